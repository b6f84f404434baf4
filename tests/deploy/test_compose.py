"""The compose files, parsed (no Docker engine here): what they publish, mount and set."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILES = sorted(DEPLOY.glob("*.yml")) + sorted(DEPLOY.glob("*.yaml"))


def services(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    found: dict[str, Any] = doc["services"]
    return found


def published(port: str | int | dict[str, Any]) -> tuple[str | None, str]:
    """(host ip or None for every interface, container port) of a compose port entry."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port["target"])
    parts = str(port).rsplit(":", 2)
    if len(parts) == 3:
        return parts[0].strip("[]"), parts[2]
    return None, parts[-1]


def test_there_is_a_compose_file() -> None:
    assert COMPOSE_FILES, "deploy/ has no compose file"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_ports_are_published_on_loopback_only(path: Path) -> None:
    for name, service in services(path).items():
        for port in service.get("ports", []):
            host_ip, _ = published(port)
            assert host_ip is not None, f"{name} publishes {port!r} on every interface"
            assert ipaddress.ip_address(host_ip).is_loopback, f"{name}: {port!r}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_data_lives_in_a_volume_and_environment_is_jobbie_settings(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    for name, service in services(path).items():
        mounts = [str(v).split(":") for v in service.get("volumes", [])]
        assert ["jobbie-data", "/data"] in [m[:2] for m in mounts], name
        assert "jobbie-data" in doc.get("volumes", {})
        env = service.get("environment") or {}
        names = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        assert all(str(n).startswith("JOBBIE_") for n in names), names
        # A key written into the file would be a secret in the repository.
        assert "JOBBIE_API_KEY" not in names or env["JOBBIE_API_KEY"].startswith("${")

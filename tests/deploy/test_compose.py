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


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    return dict(str(e).partition("=")[::2] for e in env)


def jobbie_services(path: Path) -> dict[str, Any]:
    """The services that run Jobbie (built from deploy/Dockerfile), not their database."""
    return {
        name: service
        for name, service in services(path).items()
        if service.get("image", "").startswith("jobbie") or "build" in service
    }


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_data_lives_in_a_volume_and_environment_is_jobbie_settings(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    found = jobbie_services(path)
    assert found, f"{path.name} runs no Jobbie server"
    for name, service in found.items():
        env = environment(service)
        assert all(n.startswith("JOBBIE_") for n in env), env
        # A key written into the file would be a secret in the repository.
        assert "JOBBIE_API_KEY" not in env or env["JOBBIE_API_KEY"].startswith("${")
        if env.get("JOBBIE_DATABASE", "").startswith("postgresql://"):
            continue  # the data lives in PostgreSQL (checked below)
        mounts = [str(v).split(":") for v in service.get("volumes", [])]
        assert ["jobbie-data", "/data"] in [m[:2] for m in mounts], name
        assert "jobbie-data" in doc.get("volumes", {})


def test_the_postgres_file_runs_three_servers_on_one_database_without_a_password_in_it() -> None:
    path = DEPLOY / "docker-compose.postgres.yml"
    doc = yaml.safe_load(path.read_text())
    found = jobbie_services(path)
    assert len(found) == 3
    urls = {environment(service)["JOBBIE_DATABASE"] for service in found.values()}
    assert len(urls) == 1, "every server must use the same database"
    (url,) = urls
    assert url.startswith("postgresql://jobbie:${POSTGRES_PASSWORD") and "@postgres:5432/" in url
    database = doc["services"]["postgres"]
    assert database["environment"]["POSTGRES_PASSWORD"].startswith("${")
    assert "postgres-data" in doc["volumes"]
    for service in found.values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Each server on its own loopback port.
    host_ports = {str(p).split(":")[1] for s in found.values() for p in s["ports"]}
    assert len(host_ports) == 3

"""The generated references of the documentation site (docs/gen/) cover everything: every
setting and server option is described, every command, route, schema and metric is listed.

`make docs` builds the site itself (strictly); these tests keep the generators honest without
MkDocs.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from docs.gen import cli_ref, config_ref, http_ref, metrics_ref
from jobbie.config import Settings
from jobbie.server.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_and_server_option_is_documented() -> None:
    assert config_ref.problems() == []


def test_configuration_page_lists_every_option_variable_and_setting() -> None:
    page = config_ref.render()
    for option in config_ref.server_options():
        assert f"`{option.flag}`" in page
        assert f"`{option.env}`" in page
    for name in config_ref.env_vars_read():
        assert f"`{name}`" in page
    for field in dataclasses.fields(Settings):
        assert f"| `{field.name}` |" in page
    assert "`JOBBIE_RETENTION_DEAD`" in page  # a variable without a flag
    assert "`16777216 (16 MiB)`" in page  # a fixed limit with its default


def test_an_undocumented_setting_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Undocumented:
        documented: int = 1
        """Has its docstring."""
        secret_knob: int = 2

        @classmethod
        def build(cls, flags: object, environ: dict[str, str]) -> Undocumented:
            environ.get("JOBBIE_SECRET_KNOB")
            return cls()

    monkeypatch.setattr("jobbie.config.Settings", Undocumented)
    found = config_ref.problems()
    assert any("Settings.secret_knob has no attribute docstring" in p for p in found), found
    assert any("JOBBIE_SECRET_KNOB is read by Settings.build" in p for p in found), found
    assert not any("Settings.documented" in p for p in found)


def test_cli_page_has_every_command() -> None:
    page = cli_ref.render()
    root = cli_ref.command_tree()
    ctx = root.context_class(root, info_name="jobbie")
    paths = [sub.command_path for _, sub in cli_ref._commands(root, ctx)]
    assert "jobbie backup" in paths and "jobbie schedules add" in paths
    for path in paths:
        assert f"## `{path}`" in page


def test_http_page_has_every_route_and_schema() -> None:
    page = http_ref.render()
    for route in ROUTES:
        assert f"### `{route.method} {route.path}`" in page
    for name in http_ref.document()["components"]["schemas"]:
        assert f"### {name} {{ #{http_ref.anchor(name)} }}" in page
    # Links go to schemas that exist on the page.
    for target in set(re.findall(r"\]\(#(schema-[a-z0-9]+)\)", page)):
        assert f"{{ #{target} }}" in page, target


def test_metrics_table_lists_the_servers_metrics() -> None:
    families = {f.name: f for f in metrics_ref.families()}
    assert families["jobbie_jobs"].labels == ("queue", "state")
    assert families["jobbie_jobs_dead_total"].type == "counter"
    assert families["jobbie_http_request_duration_seconds"].type == "histogram"
    page = metrics_ref.render()
    for name in families:
        assert f"`{name}`" in page


def test_nothing_in_the_repository_points_outside_it() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    # Split so that this file does not match itself.
    outside = re.compile(rb"\.\./shared/|/work/" rb"shared|shared " rb"folder")
    offenders = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if path.suffix in {".js", ".css", ".png"} or not path.is_file():
            continue
        if outside.search(path.read_bytes()):
            offenders.append(name.decode())
    assert offenders == []

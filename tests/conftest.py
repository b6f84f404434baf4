"""Shared fixtures: a real server process per session, an HTTP client, unique queue names."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends import DATABASES, TEST_BACKEND, check_test_backend, postgres_problem
from tests.serverproc import ServerProcess

_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_test_backend()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    # One marker per store backend: the contract suite (tests/contract) tags each run with it.
    for name in DATABASES:
        config.addinivalue_line("markers", f"{name}: runs against the {name} store backend")
    config.addinivalue_line(
        "markers", "sqlite_only: the servers' SQLite files are part of the test (backup, disk full)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With JOBBIE_TEST_BACKEND=postgres: skip the tests of SQLite's own files (marked
    `sqlite_only`), and with no PostgreSQL to use skip everything, saying how to enable it;
    in CI (CI set) fail instead, so CI cannot pass without PostgreSQL."""
    if TEST_BACKEND != "postgres":
        return
    sqlite_only = pytest.mark.skip(reason="tests SQLite's own files (JOBBIE_TEST_BACKEND=sqlite)")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(sqlite_only)
    if (problem := postgres_problem()) is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(problem)
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by the session; tests isolate themselves by queue name."""
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client bound to the shared server."""
    with httpx.Client(base_url=server.url, timeout=70.0) as client:
        yield client


@pytest.fixture(scope="session")
def clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A second shared server, for tests that move its clock (`POST /_test/clock`).

    Kept apart from `server`, whose tests compare its timestamps with the wall clock. Its own
    scheduler practically never runs: maintenance happens when a test moves the clock, so
    what a test sees after a move is decided by that move alone.
    """
    data_dir = tmp_path_factory.mktemp("clock-server") / "data"
    proc = ServerProcess(data_dir, scheduler_interval=3600).start()
    yield proc
    proc.stop()


@pytest.fixture
def clock_api(clock_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client bound to the server whose clock tests move."""
    with httpx.Client(base_url=clock_server.url, timeout=70.0) as client:
        yield client


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses."""
    name = re.sub(r"[^A-Za-z0-9.:-]", "-", request.node.name)
    return f"t.{next(_counter)}.{name}"[:200]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra servers with their own options; all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(*extra_args: str, **kwargs: object) -> ServerProcess:
        data_dir = tmp_path / f"data{len(started)}"
        proc = ServerProcess(data_dir, extra_args=tuple(extra_args), **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.stop()

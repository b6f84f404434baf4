"""Several real servers on one PostgreSQL database, for the multi-server tests.

PostgreSQL tests skip with `POSTGRES_HOWTO` when no PostgreSQL is reachable, except in CI
(env `CI` set), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import PostgresUnavailable, postgres_database
from tests.serverproc import ServerProcess, free_port


def shared_database(tmp_path: Path) -> str:
    """A fresh PostgreSQL database for the servers of one test (dropped at exit)."""
    try:
        return postgres_database(tmp_path / "shared")
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@contextmanager
def servers(
    tmp_path: Path, database: str, count: int = 3, *, scheduler_interval: float = 1.0
) -> Iterator[list[ServerProcess]]:
    """`count` servers on `database` (started one after the other, so the first leads), all
    stopped afterwards (those still running)."""
    started: list[ServerProcess] = []
    try:
        for i in range(count):
            proc = ServerProcess(
                tmp_path / f"node{i}",
                database=database,
                scheduler_interval=scheduler_interval,
            )
            started.append(proc)
            proc.start()
        yield started
    finally:
        for proc in started:
            proc.stop()


def cluster_status(url: str) -> dict[str, Any]:
    resp = httpx.get(f"{url}/api/v1/cluster/status", timeout=10)
    assert resp.status_code == 200, resp.text
    status: dict[str, Any] = resp.json()
    return status


def leader_address(url: str) -> str | None:
    """The address of the node `url`'s server sees leading, if any."""
    leaders = [n["address"] for n in cluster_status(url)["nodes"] if n["leader"]]
    assert len(leaders) <= 1, leaders
    return leaders[0] if leaders else None


def wait_for_leader(url: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := leader_address(url)) is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no leader after {timeout} s: {cluster_status(url)}")


def advance_all(procs: list[ServerProcess], seconds: float) -> None:
    """Move every server's clock (each runs a scheduler pass), all at once."""

    def advance(proc: ServerProcess) -> None:
        resp = httpx.post(f"{proc.url}/_test/clock", json={"seconds": seconds}, timeout=30)
        assert resp.status_code == 200, resp.text

    with ThreadPoolExecutor(len(procs)) as pool:
        list(pool.map(advance, procs))


# The PostgreSQL binaries of the throwaway clusters (Debian's layout by default).
PG_BIN = Path(os.environ.get("JOBBIE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _unavailable(why: str) -> None:
    message = f"a throwaway PostgreSQL cluster is needed: {why}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on a free port, that a test
    may stop and start (never the shared test server). `initdb` refuses to run as root, so
    as root it runs as the `postgres` OS user."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            _unavailable(f"no initdb in {PG_BIN} (set JOBBIE_TEST_PG_BIN)")
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root, and there is no postgres OS user to run it as")
            if shutil.which("runuser") is None:
                _unavailable("running as root without runuser")
            self._as = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: its parents are private to root.
        self.dir = Path(tempfile.mkdtemp(prefix="jobbie-pg-"))
        if self._as:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(PG_BIN / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options,
                  "-w", "start")  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint; recovery replays the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)

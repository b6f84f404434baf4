"""Jobbie behind PgBouncer (issue 12): transaction pooling breaks LISTEN, session locks and
prepared statements, so a server pointed through it refuses to start and says why; session
pooling works like a direct connection.

PgBouncer runs as a throwaway process on a free port in front of the shared test PostgreSQL
(as the `postgres` OS user when the tests run as root: it refuses root). Without a
`pgbouncer` binary the tests skip, saying how to get one, except in CI, where that fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.cluster import shared_database
from tests.serverproc import ServerProcess, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HOWTO = "PgBouncer is needed for these tests: apt-get install pgbouncer"


class PgBouncer:
    """A PgBouncer in `mode` forwarding every database to the PostgreSQL of `url`."""

    def __init__(self, url: str, mode: str) -> None:
        if not Path(PGBOUNCER).exists():
            if os.environ.get("CI"):
                pytest.fail(HOWTO)
            pytest.skip(HOWTO)
        target = urlsplit(url)
        self.dir = Path(tempfile.mkdtemp(prefix="jobbie-pgbouncer-"))
        self.port = free_port()
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={target.hostname} port={target.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"pool_mode = {mode}\nlogfile = {self.dir / 'log'}\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._proc = subprocess.Popen(
            [*self._as, PGBOUNCER, str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = url.replace(target.netloc, f"postgres@127.0.0.1:{self.port}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("PgBouncer did not start")

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return shared_database(tmp_path)


@pytest.fixture
def transaction_pooler(database: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(database, "transaction")
    yield bouncer
    bouncer.stop()


@pytest.fixture
def session_pooler(database: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(database, "session")
    yield bouncer
    bouncer.stop()


def test_a_server_behind_transaction_pooling_refuses_to_start(
    transaction_pooler: PgBouncer,
) -> None:
    url = transaction_pooler.url.replace("postgres@", "postgres:hunter2@")
    done = subprocess.run(
        [sys.executable, "-m", "jobbie", "server", "--database", url,
         "--bind", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "notifications do not reach this server" in output
    assert "PgBouncer in session mode" in output
    assert "hunter2" not in output


def test_a_server_behind_session_pooling_works(session_pooler: PgBouncer, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", database=session_pooler.url).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            api.post("/api/v1/enqueue", json={"queue": "q", "payload": 1}).raise_for_status()
            fetched = api.post(
                "/api/v1/fetch", json={"queues": ["q"], "worker_id": "w", "timeout": 5}
            ).json()
            assert fetched["payload"] == 1
            ack = api.post(f"/api/v1/ack/{fetched['job_id']}", json={"worker_id": "w"})
            assert ack.status_code == 200, ack.text
    finally:
        server.stop()

"""Start and stop real `jobbie server` processes for integration tests.

Every server runs on the store backend `JOBBIE_TEST_BACKEND` names (default `sqlite`; see
tests/backends.py, the one place that chooses it) and with `--test-clock`, so that a test can
move its clock with `POST /_test/clock {"seconds": n}` instead of sleeping for a lease, a
schedule or a throttle window. The route does nothing unless called.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.backends import server_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A `python -m jobbie server` subprocess on a free port with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        scheduler_interval: float = 0.1,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        test_clock: bool = True,
        prefix: tuple[str, ...] = (),
        database: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        # The `--database` URL; by default the test backend's store for `data_dir`. Servers
        # given one URL share a database (PostgreSQL).
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scheduler_interval = scheduler_interval
        self.extra_args = extra_args
        self.env = env
        self.test_clock = test_clock
        # A command the server runs under (e.g. unshare with a size-limited tmpfs mount).
        self.prefix = prefix
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Start the server and wait until /healthz answers."""
        cmd = [
            *self.prefix,
            sys.executable,
            "-m",
            "jobbie",
            "server",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--data-dir",
            str(self.data_dir),
            "--database",
            self.database or server_database(self.data_dir),
            "--scheduler-interval",
            str(self.scheduler_interval),
            *(["--test-clock"] if self.test_clock else []),
            *self.extra_args,
        ]
        env = {**os.environ, **(self.env or {})}
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

"""Fixtures of the CLI tests: run the real `jobbie` entry point as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from jobbie import Client
from tests.serverproc import ServerProcess

# No variable of the caller's shell may point the CLI at another server.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("JOBBIE_URL", "JOBBIE_API_KEY")}
CLEAN_ENV["COLUMNS"] = "80"


@dataclass(frozen=True)
class Result:
    """What one `jobbie` run printed and how it exited."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.stdout)


def run_jobbie(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run `python -m jobbie ARGS` in its own session (no terminal to prompt on)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jobbie", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**CLEAN_ENV, **(env or {})},
        start_new_session=True,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_many(calls: Sequence[Callable[[], Result]]) -> list[Result]:
    """Run independent CLI calls side by side (each is a process that mostly waits on imports)
    and return their results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: call(), calls))


Jobbie = Callable[..., Result]


@pytest.fixture
def jobbie(server: ServerProcess) -> Jobbie:
    """Run a client command against the session's server: `jobbie("queues", "-o", "json")`."""

    def run(*args: str, input: str | None = None) -> Result:
        return run_jobbie(*args, "--server", server.url, input=input)

    return run


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    """A `Client` of the session's server, to set the scene and check the outcome."""
    with Client(server.url, timeout=10.0) as c:
        yield c


def make_dead(client: Client, queue: str, count: int) -> list[str]:
    """Enqueue `count` jobs without retries and fail each one: they end up dead."""
    ids = [client.enqueue(queue, {"n": i}, max_retries=0).job_id for i in range(count)]
    for _ in ids:
        job = client.fetch(queue, timeout=5)
        assert job is not None
        client.fail(job, "boom")
    return ids

"""The workers in examples/ (Node.js with built-in fetch, shell with curl and jq) against a real
server: jobs end completed or failed as expected, heartbeats keep short leases, and SIGTERM
hands a running job back.

A missing runtime skips these tests on a developer's machine, and fails them in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import enqueue, get_job, ts_epoch, wait_for, wait_for_state
from tests.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
NODE_WORKER = ROOT / "examples" / "node" / "worker.mjs"
SHELL_WORKER = ROOT / "examples" / "shell" / "worker.sh"


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must have every example's runtime")
    pytest.skip(message)


class Worker:
    """An example worker as a subprocess, its output in a log file."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def start_worker(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(cmd: list[str], queue: str, **env: str) -> Worker:
        settings = {"JOBBIE_URL": server.url, "QUEUES": queue, "POLL_SECONDS": "5", **env}
        worker = Worker(cmd, settings, tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


NODE = ["node", str(NODE_WORKER)]


# ---- Node.js ----------------------------------------------------------------------------------


def test_node_worker_completes_and_fails_jobs(start_worker, api: httpx.Client, queue: str) -> None:
    require("node")
    worker = start_worker(NODE, queue, WORKER_ID="node-1")
    ok = enqueue(api, queue, payload={"n": 1})
    bad = enqueue(api, queue, payload={"fail": "smtp refused"}, max_retries=0)
    done = wait_for_state(api, ok, "completed", timeout=20)
    assert done["result"] == {"echo": {"n": 1}, "attempt": 1, "worker": "node-1"}
    dead = wait_for_state(api, bad, "dead", timeout=20)
    assert dead["last_error"] == "smtp refused"
    (error,) = dead["errors"]
    # A stack trace from Node: the message, then "at ..." frames naming the worker file.
    assert error["backtrace"].startswith("Error: smtp refused")
    assert "worker.mjs" in error["backtrace"], error["backtrace"]
    assert worker.proc.poll() is None, worker.log()


def test_node_worker_long_polls_and_heartbeats_a_short_lease(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("node")
    start_worker(NODE, queue, LEASE_SECONDS="3")
    # The worker is already waiting in a long-poll; a job that outlives its lease twice over
    # completes on attempt 1 only because heartbeats kept extending it.
    job_id = enqueue(api, queue, payload={"sleep_ms": 7000})
    wait_for_state(api, job_id, "active", timeout=20)
    done = wait_for_state(api, job_id, "completed", timeout=20)
    assert done["attempt"] == 1 and done["errors"] == []


def test_node_worker_stops_on_a_cancel_heard_on_a_heartbeat(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("node")
    start_worker(NODE, queue, LEASE_SECONDS="3")
    job_id = enqueue(api, queue, payload={"sleep_ms": 60000})
    wait_for_state(api, job_id, "active", timeout=20)
    resp = api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert resp.json() == {"status": "cancelling"}
    wait_for_state(api, job_id, "cancelled", timeout=20)


def test_node_worker_releases_its_job_on_sigterm(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("node")
    worker = start_worker(NODE, queue)
    job_id = enqueue(api, queue, payload={"sleep_ms": 60000})
    wait_for_state(api, job_id, "active", timeout=20)
    assert worker.terminate() == 0, worker.log()
    job = get_job(api, job_id)
    assert job["state"] == "pending" and job["attempt"] == 0, job
    assert "released" in [event["type"] for event in job["events"]]
    assert job["errors"] == []


# ---- shell (curl + jq) ------------------------------------------------------------------------


def start_shell(
    start_worker: Callable[..., Worker], queue: str, *command: str, **env: str
) -> Worker:
    return start_worker(["bash", str(SHELL_WORKER), queue, *command], queue, **env)


def test_shell_worker_acks_the_commands_json_output(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("bash", "curl", "jq")
    start_shell(start_worker, queue, "jq", "-c", "{sum: (.a + .b)}")
    job_id = enqueue(api, queue, payload={"a": 1, "b": 2})
    done = wait_for_state(api, job_id, "completed", timeout=20)
    assert done["result"] == {"sum": 3}


def test_shell_worker_fails_a_non_zero_exit_with_its_stderr(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("bash", "curl", "jq")
    start_shell(start_worker, queue, "sh", "-c", "echo 'disk on fire' >&2; exit 3")
    job_id = enqueue(api, queue, payload={}, max_retries=1, retry_backoff="none")
    dead = wait_for_state(api, job_id, "dead", timeout=20)
    assert [e["attempt"] for e in dead["errors"]] == [1, 2]
    assert dead["last_error"] == "exit status 3"
    assert dead["errors"][0]["backtrace"] == "disk on fire\n"


def test_shell_worker_heartbeats_and_releases_on_sigterm(
    start_worker, api: httpx.Client, queue: str
) -> None:
    require("bash", "curl", "jq")
    # A lease long enough for a loaded machine, heartbeats every 2 s.
    worker = start_shell(start_worker, queue, "sleep", "60", LEASE_SECONDS="6")
    job_id = enqueue(api, queue, payload={})
    first = wait_for_state(api, job_id, "active", timeout=20)
    # Two heartbeats later the job is still held by the same attempt, its lease extended.
    wait_for(
        lambda: (
            ts_epoch((j := get_job(api, job_id))["lease_expires_at"])
            >= ts_epoch(first["lease_expires_at"]) + 3.5
            and j
        ),
        timeout=30,
        what="heartbeats extending the lease",
    )
    assert get_job(api, job_id)["attempt"] == 1
    assert worker.terminate() == 0, worker.log()
    job = get_job(api, job_id)
    assert job["state"] == "pending" and job["attempt"] == 0, job
    assert job["errors"] == []

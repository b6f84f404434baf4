"""The worker as users run it: `jobbie worker module:attr` in its own process, SIGTERM drain,
and a server restart underneath a running worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobbie import Client, Job, JobContext, Worker
from tests.client.helpers import running, wait_until
from tests.serverproc import ServerProcess

WORKER_MODULE = textwrap.dedent(
    """
    import os
    import time

    from jobbie import Worker

    worker = Worker(
        os.environ["TEST_JOBBIE_URL"],
        concurrency=2,
        heartbeat_interval=0.2,
        shutdown_timeout=0.5,
    )


    @worker.handler(os.environ["TEST_QUEUE"])
    def stuck(job, ctx):
        step = (job.checkpoint or {}).get("step", 0) + 1
        ctx.checkpoint({"step": step})
        while True:  # never finishes, and ignores ctx.cancelled: the worst case
            time.sleep(0.05)
    """
)


@pytest.fixture
def worker_module(tmp_path: Path) -> Path:
    (tmp_path / "stuck_worker.py").write_text(WORKER_MODULE)
    return tmp_path


def start_worker_process(cwd: Path, target: str, url: str, queue: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_JOBBIE_URL": url, "TEST_QUEUE": queue}
    return subprocess.Popen(
        [sys.executable, "-m", "jobbie", "worker", target, "--log-level", "info"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Kill any worker process a failed test left behind."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_sigterm_releases_running_jobs_with_their_checkpoints(
    server: ServerProcess,
    client: Client,
    queue: str,
    worker_module: Path,
    reap: list[subprocess.Popen[bytes]],
) -> None:
    ids = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(3)]).job_ids
    proc = start_worker_process(worker_module, "stuck_worker:worker", server.url, queue)
    reap.append(proc)

    def two_running_with_checkpoints() -> list[Job]:
        jobs = [client.get_job(i) for i in ids]
        running = [j for j in jobs if j.state == "active" and j.checkpoint == {"step": 1}]
        return running if len(running) == 2 else []  # concurrency 2: the third waits

    started = wait_until(two_running_with_checkpoints, what="two jobs running")

    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output.decode(errors="replace")

    jobs = {i: client.get_job(i) for i in ids}
    assert {j.state for j in jobs.values()} == {"pending"}
    for job in started:
        released = jobs[job.id]
        assert released.checkpoint == {"step": 1}
        assert released.attempt == 0  # the attempt was handed back, no retry used
        assert released.errors == [] and released.last_error is None
        assert "released" in [e.type for e in released.events]
    assert client.queue(queue).totals.failed == 0

    # Nothing was lost: another worker finishes all three, resuming from the checkpoints.
    worker = Worker(server.url, queues=[queue], concurrency=3)

    @worker.handler(queue)
    def finish(job: Job, ctx: JobContext) -> int:
        step: int = (job.checkpoint or {}).get("step", 0)
        return step

    with running(worker):
        wait_until(lambda: client.queue(queue).counts.completed == 3, what="all three done")
    results = {i: client.get_job(i).result for i in ids}
    assert sorted(results.values()) == [0, 1, 1]
    assert all(client.get_job(job.id).attempt == 1 for job in started)


def test_worker_carries_on_across_a_server_restart(
    make_server: Callable[..., ServerProcess], queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    # Short leases, so a job leased in a reply lost to the restart is reclaimed quickly.
    worker = Worker(
        server.url,
        queues=[queue],
        concurrency=4,
        lease_duration=2,
        poll_timeout=1,
        heartbeat_interval=0.5,
    )
    done: set[str] = set()
    lock = threading.Lock()

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> None:
        time.sleep(0.01)
        with lock:
            done.add(job.id)

    with Client(server.url) as client, running(worker):
        first = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(200)]).job_ids
        wait_until(lambda: len(done) >= 10, what="some jobs done before the restart")
        server.terminate()
        with pytest.raises(Exception):  # noqa: B017 - any error: the server is down
            client.health()
        server.start()
        second = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(50)]).job_ids
        wait_until(
            lambda: client.queue(queue).counts.completed == 250,
            timeout=30,
            what="every job completed after the restart",
        )
    assert done == set(first) | set(second)
    outage = [r for r in caplog.records if r.name == "jobbie.worker" and "retrying" in r.message]
    assert outage, "the worker never noticed the server was gone"


def test_cli_refuses_a_bad_target(worker_module: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jobbie", "worker", "stuck_worker:nothing_here"],
        cwd=worker_module,
        capture_output=True,
        timeout=30,
        env={**os.environ, "TEST_JOBBIE_URL": "http://127.0.0.1:1", "TEST_QUEUE": "q"},
    )
    assert result.returncode == 2
    assert b"nothing_here" in result.stderr

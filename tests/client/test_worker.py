"""`Worker` in this process (on a thread) against the real server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from jobbie import Client, Job, JobContext, Worker
from tests.client.helpers import running, wait_for_state, wait_until
from tests.serverproc import ServerProcess


class Concurrency:
    """Counts handlers running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_thousand_jobs_with_concurrency_8(
    server: ServerProcess, client: Client, queue: str
) -> None:
    ids = client.enqueue_batch([{"queue": queue, "payload": {"n": n}} for n in range(1000)]).job_ids
    worker = Worker(server.url, queues=[queue], concurrency=8, heartbeat_interval=1)
    seen = Concurrency()

    @worker.handler(queue)
    def double(job: Job, ctx: JobContext) -> dict[str, int]:
        with seen:
            time.sleep(0.002)
            return {"double": job.payload["n"] * 2}

    with running(worker):
        wait_until(
            lambda: client.queue(queue).counts.completed == 1000, timeout=40, what="1000 done"
        )
    counts = client.queue(queue).counts
    assert (counts.pending, counts.active, counts.retrying, counts.dead) == (0, 0, 0, 0)
    assert worker.stats.completed == 1000 and worker.stats.failed == 0
    assert 1 < seen.peak <= 8
    for n in (0, 499, 999):
        job = client.get_job(ids[n])
        assert (job.state, job.result, job.attempt) == ("completed", {"double": 2 * n}, 1)


def test_batched_fetch_runs_async_handlers_on_the_loop(
    server: ServerProcess, client: Client, queue: str
) -> None:
    client.enqueue_batch([{"queue": queue, "payload": n} for n in range(200)])
    worker = Worker(server.url, concurrency=16, fetch_batch=True, heartbeat_interval=1)
    seen = Concurrency()
    threads: set[str] = set()

    @worker.handler(queue)
    async def handle(job: Job, ctx: JobContext) -> int:
        threads.add(threading.current_thread().name)
        with seen:
            await asyncio.sleep(0.01)
        payload: int = job.payload
        return payload

    with running(worker):
        wait_until(lambda: client.queue(queue).counts.completed == 200, timeout=20, what="done")
    assert worker.stats.completed == 200
    assert threads == {"test-worker"}  # the loop's thread, never the handler pool
    assert 1 < seen.peak <= 16


def test_failure_then_retry_then_success(server: ServerProcess, client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, {"n": 1}, retry_backoff="none").job_id
    worker = Worker(server.url, queues=[queue], concurrency=2)

    def flaky(job: Job, ctx: JobContext) -> str:
        if job.attempt == 1:
            raise ValueError("flaky on the first try")
        return "worked"

    worker.register(queue, flaky)
    with running(worker):
        job = wait_for_state(client, job_id, "completed")
    assert (job.attempt, job.result) == (2, "worked")
    [error] = job.errors
    assert error.attempt == 1
    assert error.error == "ValueError: flaky on the first try"
    assert error.backtrace is not None
    assert "Traceback" in error.backtrace and "in flaky" in error.backtrace
    assert (worker.stats.completed, worker.stats.failed) == (1, 1)


def test_checkpoint_is_saved_at_once_and_resumed_after_a_failure(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue, {"total": 300}, retry_backoff="none").job_id
    saved = threading.Event()
    seen_checkpoints: list[Any] = []
    # A long heartbeat interval: the checkpoint must not wait for the heartbeat loop.
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=30)

    @worker.handler(queue)
    def process(job: Job, ctx: JobContext) -> dict[str, int]:
        seen_checkpoints.append(job.checkpoint)
        start = (job.checkpoint or {}).get("offset", 0)
        ctx.checkpoint({"offset": start + 100})
        if job.attempt == 1:
            assert saved.wait(10)
            raise RuntimeError("crashed after the first 100")
        return {"resumed_from": start}

    with running(worker):
        wait_until(
            lambda: client.get_job(job_id).checkpoint == {"offset": 100},
            what="the checkpoint on the server while the handler runs",
        )
        saved.set()
        job = wait_for_state(client, job_id, "completed")
    assert seen_checkpoints == [None, {"offset": 100}]
    assert job.result == {"resumed_from": 100}
    assert job.checkpoint == {"offset": 200}
    assert job.attempt == 2


def test_progress_goes_out_with_the_heartbeat(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue).job_id
    finish = threading.Event()
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=0.1)

    @worker.handler(queue)
    def slow(job: Job, ctx: JobContext) -> None:
        ctx.progress(100, 1000, "sending")
        assert finish.wait(10)

    with running(worker):

        def progress() -> Any:
            return client.get_job(job_id).progress

        got = wait_until(progress, what="progress on the server")
        assert (got.current, got.total, got.message) == (100, 1000, "sending")
        finish.set()
        job = wait_for_state(client, job_id, "completed")
    assert job.result is None


def test_cancellation_reaches_a_running_handler(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue).job_id
    started = threading.Event()
    outcome: list[bool] = []
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=0.1)

    @worker.handler(queue)
    def long_job(job: Job, ctx: JobContext) -> str:
        started.set()
        outcome.append(ctx.wait_cancelled(10))
        return "stopped early" if ctx.cancelled else "finished"

    with running(worker):
        assert started.wait(10)
        assert client.cancel_job(job_id) == "cancelling"
        job = wait_for_state(client, job_id, "cancelled")
    assert outcome == [True]
    assert job.cancel_requested is True


def test_async_handler_sees_cancellation(server: ServerProcess, client: Client, queue: str) -> None:
    job_id = client.enqueue(queue).job_id
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=0.1)
    outcome: list[bool] = []

    @worker.handler(queue)
    async def long_job(job: Job, ctx: JobContext) -> None:
        await ctx.acheckpoint({"started": True})
        for _ in range(500):
            if ctx.cancelled:
                break
            await asyncio.sleep(0.02)
        outcome.append(ctx.cancelled)

    with running(worker):
        wait_until(lambda: client.get_job(job_id).checkpoint == {"started": True}, what="start")
        client.cancel_job(job_id)
        wait_for_state(client, job_id, "cancelled")
    assert outcome == [True]


def test_a_job_without_a_handler_is_failed_not_acked(
    server: ServerProcess, client: Client, queue: str
) -> None:
    orphan_queue = f"{queue}.orphan"
    job_id = client.enqueue(orphan_queue, max_retries=0).job_id
    worker = Worker(server.url, queues=[queue, orphan_queue], concurrency=2)
    worker.register(queue, lambda job, ctx: None)
    with running(worker):
        job = wait_for_state(client, job_id, "dead")
    assert job.last_error is not None
    assert f"no handler registered for queue {orphan_queue!r}" in job.last_error
    assert job.result is None


def test_a_result_that_is_not_json_fails_the_job(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue, max_retries=0).job_id
    worker = Worker(server.url, queues=[queue], concurrency=1)
    worker.register(queue, lambda job, ctx: object())
    with running(worker):
        job = wait_for_state(client, job_id, "dead")
    assert job.last_error is not None and "could not be encoded as JSON" in job.last_error


def test_a_lost_lease_drops_the_stale_result(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue).job_id
    runs: list[tuple[int, bool]] = []
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=0.1)

    @worker.handler(queue)
    def handle(job: Job, ctx: JobContext) -> str:
        if not runs:
            runs.append((job.attempt, ctx.wait_cancelled(10) and ctx.lost))
            return "stale"
        runs.append((job.attempt, ctx.lost))
        return "fresh"

    with running(worker):
        wait_until(lambda: client.get_job(job_id).state == "active", what="first run")
        # An operator hands the job back behind the worker's back: the lease is gone.
        assert client.release(job_id, worker_id=worker.worker_id, attempt=1) == "pending"
        job = wait_for_state(client, job_id, "completed")
    assert runs == [(1, True), (1, False)]
    assert job.result == "fresh"
    assert worker.stats.lost == 1 and worker.stats.completed == 1


def test_worker_arguments_are_checked(server: ServerProcess) -> None:
    with pytest.raises(ValueError, match="invalid queue name"):
        Worker(server.url, queues=["no spaces"])
    with pytest.raises(ValueError, match="concurrency"):
        Worker(server.url, concurrency=0)
    with pytest.raises(ValueError, match="no queues"):
        Worker(server.url).run()


def test_stop_releases_an_async_handler_past_the_grace_period(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue).job_id
    worker = Worker(server.url, queues=[queue], concurrency=1, shutdown_timeout=0.2)

    @worker.handler(queue)
    async def forever(job: Job, ctx: JobContext) -> None:
        await ctx.acheckpoint({"page": 9})
        await asyncio.sleep(60)

    with running(worker):
        wait_until(lambda: client.get_job(job_id).checkpoint == {"page": 9}, what="checkpoint")
    job = client.get_job(job_id)
    assert (job.state, job.attempt, job.checkpoint, job.errors) == ("pending", 0, {"page": 9}, [])
    assert worker.stats.released == 1


def test_an_oversized_checkpoint_does_not_stop_heartbeats(
    server: ServerProcess, client: Client, queue: str
) -> None:
    job_id = client.enqueue(queue).job_id
    worker = Worker(server.url, queues=[queue], concurrency=1, heartbeat_interval=0.1)
    beats: list[bool] = []

    @worker.handler(queue)
    def big(job: Job, ctx: JobContext) -> str:
        ctx.checkpoint("x" * (1024 * 1024 + 10))  # refused by the server, dropped
        ctx.progress(1, 2, "still alive")
        beats.append(ctx.wait_cancelled(0.5))
        return "done"

    with running(worker):
        job = wait_for_state(client, job_id, "completed")
    assert beats == [False]
    assert job.checkpoint is None
    assert job.progress is not None and job.progress.message == "still alive"

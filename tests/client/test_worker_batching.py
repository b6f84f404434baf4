"""The batching `Worker` (the default) against the real server: coalesced acks and fails,
lost leases inside a batch, acks flushed before the rest is released at shutdown, coalesced
acks carried across a server restart, many quick sync jobs each reported once, a handler that
returns after `stop()`; and the unbatched mode (`fetch_batch=False`)."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable

from jobbie import Client, Job, JobContext, Worker
from jobbie.client.worker import WorkerStats
from tests.client.helpers import running, wait_for_state, wait_until
from tests.serverproc import ServerProcess


def test_unbatched_worker_acks_and_fetches_each_job(
    server: ServerProcess, client: Client, queue: str
) -> None:
    client.enqueue_batch([{"queue": queue, "payload": n, "max_retries": 0} for n in range(300)])
    worker = Worker(server.url, queues=[queue], concurrency=4, fetch_batch=False)
    lock = threading.Lock()
    now = peak = 0

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> int:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.001)
        with lock:
            now -= 1
        if job.payload % 10 == 0:
            raise RuntimeError("every tenth fails")
        payload: int = job.payload
        return payload

    with running(worker):
        wait_until(lambda: client.queue(queue).counts.completed == 270, timeout=40, what="270 done")
        wait_until(lambda: worker.stats.failed >= 30, what="30 failed")
    assert (worker.stats.completed, worker.stats.failed, worker.stats.lost) == (270, 30, 0)
    assert 1 <= peak <= 4
    counts = client.queue(queue).counts
    assert (counts.active, counts.dead) == (0, 30)


def test_batched_fails_go_out_together(server: ServerProcess, client: Client, queue: str) -> None:
    ids = client.enqueue_batch(
        [{"queue": queue, "payload": n, "max_retries": 0} for n in range(50)]
    ).job_ids
    worker = Worker(server.url, queues=[queue], concurrency=8)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> int:
        if job.payload % 2:
            raise ValueError(f"odd {job.payload}")
        payload: int = job.payload
        return payload

    with running(worker):
        wait_until(lambda: worker.stats.completed + worker.stats.failed == 50, what="all 50")
    assert (worker.stats.completed, worker.stats.failed) == (25, 25)
    dead = client.get_job(ids[1])
    assert dead.state == "dead" and dead.last_error == "ValueError: odd 1"
    assert dead.errors[0].backtrace is not None and "odd 1" in dead.errors[0].backtrace
    assert client.get_job(ids[2]).result == 2


def test_a_lost_lease_inside_a_batch_spares_the_others(
    server: ServerProcess, client: Client, queue: str
) -> None:
    lose = client.enqueue(queue, {"name": "lose"}, retry_base_delay="1h").job_id
    keep = client.enqueue(queue, {"name": "keep"}).job_id
    go = threading.Event()
    started: set[str] = set()
    # A long flush interval and heartbeat: both results go out in one ack/batch, and no
    # heartbeat tells the worker about the lost lease before that.
    worker = Worker(
        server.url, queues=[queue], concurrency=2, flush_interval=30, heartbeat_interval=60
    )

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> str:
        started.add(job.id)
        go.wait(20)
        return "done"

    with running(worker):
        wait_until(lambda: started == {lose, keep}, what="both running")
        # Someone fails one attempt behind the worker's back: its lease is gone.
        assert client.fail(lose, "taken away", worker_id=worker.worker_id, attempt=1).status == (
            "retrying"
        )
        go.set()
        wait_until(lambda: worker.stats.completed + worker.stats.lost == 2, what="both reported")
    assert (worker.stats.completed, worker.stats.lost) == (1, 1)
    assert client.get_job(keep).state == "completed"
    lost = client.get_job(lose)
    assert (lost.state, lost.result) == ("retrying", None)


def test_shutdown_flushes_acks_before_releasing(
    server: ServerProcess, client: Client, queue: str
) -> None:
    quick = client.enqueue(queue, "quick").job_id
    slow = client.enqueue(queue, "slow").job_id
    returned = threading.Event()
    worker = Worker(server.url, queues=[queue], concurrency=2, flush_interval=30)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> str:
        if job.payload == "quick":
            returned.set()
            return "fast result"
        ctx.wait_cancelled(20)  # until the worker gives up on it
        return "too late"

    with running(worker):
        assert returned.wait(10)
        time.sleep(0.2)
        # The quick job's ack waits for the slow one (flush interval 30 s)...
        assert client.get_job(quick).state == "active"
        worker.stop(wait=False)
    # ... and goes out at shutdown, before the slow job is handed back.
    done = client.get_job(quick)
    assert (done.state, done.result) == ("completed", "fast result")
    back = client.get_job(slow)
    assert back.state == "pending"  # handed back without using a retry
    assert (worker.stats.completed, worker.stats.released) == (1, 1)


def test_coalesced_acks_survive_a_server_restart(
    make_server: Callable[..., ServerProcess], queue: str
) -> None:
    server = make_server()
    go = threading.Event()
    finished: list[str] = []
    worker = Worker(server.url, queues=[queue], concurrency=8, poll_timeout=1)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> int:
        go.wait(30)
        finished.append(job.id)
        payload: int = job.payload
        return payload * 10

    with Client(server.url) as client, running(worker):
        ids = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(8)]).job_ids
        wait_until(lambda: client.queue(queue).counts.active == 8, what="8 running")
        server.terminate()
        go.set()  # the 8 results are coalesced while the server is down
        wait_until(lambda: len(finished) == 8, what="8 handlers done")
        time.sleep(0.5)
        assert worker.stats.completed == 0
        server.start()
        wait_until(lambda: worker.stats.completed == 8, timeout=30, what="acks delivered")
        for n, job_id in enumerate(ids):
            job = wait_for_state(client, job_id, "completed")
            assert (job.result, job.attempt) == (n * 10, 1)
    assert worker.stats.lost == 0


def test_concurrency_one_picks_up_at_once(
    server: ServerProcess, client: Client, queue: str
) -> None:
    started: list[float] = []
    worker = Worker(server.url, queues=[queue], concurrency=1)
    worker.register(queue, lambda job, ctx: started.append(time.monotonic()))
    with running(worker):
        time.sleep(0.3)  # parked in its long-poll
        lags = []
        for n in range(5):
            sent = time.monotonic()
            job_id = client.enqueue(queue, n).job_id
            wait_for_state(client, job_id, "completed")
            lags.append(started[-1] - sent)
    assert len(started) == 5
    assert max(lags) < 1.0  # generous: the point is no poll interval or flush delay


def warm_up(client: Client, worker: Worker, queue: str, n: int = 3) -> None:
    """Let `n` quick jobs (payload -1) finish: a worker prefetches only once it has seen a job
    finish (and knows how long handlers take)."""
    client.enqueue_batch([{"queue": queue, "payload": -1} for _ in range(n)])
    wait_until(lambda: worker.stats.completed == n, what=f"{n} warm-up jobs")


def test_a_quick_worker_holds_prefetched_jobs_beyond_its_handlers(
    server: ServerProcess, client: Client, queue: str
) -> None:
    gate = threading.Event()
    lock = threading.Lock()
    now = peak = 0
    worker = Worker(server.url, queues=[queue], concurrency=2, prefetch=3)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> None:
        nonlocal now, peak
        if job.payload == -1:
            return
        with lock:
            now += 1
            peak = max(peak, now)
        gate.wait(10)
        with lock:
            now -= 1

    with running(worker):
        warm_up(client, worker, queue)
        client.enqueue_batch([{"queue": queue, "payload": n} for n in range(10)])
        # Two run, three more wait their turn here, leased to this worker.
        wait_until(lambda: client.queue(queue).counts.active == 5, what="5 leased")
        time.sleep(0.3)
        assert client.queue(queue).counts.active == 5
        assert len(worker.running) == 5
        gate.set()
        wait_until(lambda: worker.stats.completed == 13, what="all 13")
    assert peak == 2


def test_prefetched_jobs_go_back_at_once_when_the_worker_stops(
    server: ServerProcess, client: Client, queue: str
) -> None:
    entered = threading.Event()
    gate = threading.Event()
    worker = Worker(server.url, queues=[queue], concurrency=1, prefetch=3, shutdown_timeout=30)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> None:
        if job.payload == -1:
            return
        entered.set()
        gate.wait(10)

    with running(worker):
        warm_up(client, worker, queue)
        ids = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(4)]).job_ids
        wait_until(lambda: client.queue(queue).counts.active == 4, what="4 leased")
        assert entered.wait(5)
        stopping = threading.Thread(target=worker.stop)
        stopping.start()
        # The three waiting jobs are handed back while the running one still runs.
        wait_until(lambda: client.queue(queue).counts.pending == 3, what="3 handed back")
        assert client.queue(queue).counts.active == 1
        gate.set()
        stopping.join(10)
    states = sorted(client.get_job(job_id).state for job_id in ids)
    assert states == ["completed", "pending", "pending", "pending"]
    assert worker.stats.released == 3


def test_slow_handlers_are_not_prefetched(
    server: ServerProcess, client: Client, queue: str
) -> None:
    client.enqueue_batch([{"queue": queue, "payload": n} for n in range(30)])
    worker = Worker(server.url, queues=[queue], concurrency=2, prefetch=4)
    leased: list[int] = []

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> None:
        leased.append(client.queue(queue).counts.active)
        time.sleep(0.3)

    with running(worker):
        wait_until(lambda: worker.stats.completed >= 8, timeout=30, what="8 done")
    # 0.3 s per job is far more than the 50 ms of work a handler may hold in reserve: only the
    # running two are leased (and perhaps one finished job whose ack is on its way).
    assert leased[0] <= 2
    assert max(leased) <= 3


def test_many_quick_sync_jobs_are_each_run_and_reported_once(
    server: ServerProcess, client: Client, queue: str
) -> None:
    n = 800
    ids = client.enqueue_batch(
        [{"queue": queue, "payload": k, "max_retries": 0} for k in range(n)]
    ).job_ids
    worker = Worker(server.url, queues=[queue], concurrency=8)
    lock = threading.Lock()
    runs: collections.Counter[str] = collections.Counter()

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> int:
        with lock:
            runs[job.id] += 1
        if job.payload % 10 == 3:
            raise ValueError(f"unlucky {job.payload}")
        payload: int = job.payload
        return 2 * payload

    with running(worker):
        wait_until(lambda: client.queue(queue).counts.completed == n - n // 10, what="all acked")
        wait_until(lambda: worker.stats.failed == n // 10, what="all failed")
        wait_until(lambda: not worker.running, what="every job let go")
    assert sorted(runs) == sorted(ids) and set(runs.values()) == {1}
    assert worker.stats == WorkerStats(completed=n - n // 10, failed=n // 10)
    counts = client.queue(queue).counts
    assert (counts.active, counts.dead, counts.completed) == (0, n // 10, n - n // 10)
    assert client.get_job(ids[3]).last_error == "ValueError: unlucky 3"
    assert client.get_job(ids[n - 1]).result == 2 * (n - 1)


def test_sync_and_async_handlers_share_the_concurrency(
    server: ServerProcess, client: Client, queue: str
) -> None:
    other = f"{queue}.async"
    n = 300
    client.enqueue_batch([{"queue": (queue, other)[k % 2], "payload": k} for k in range(n)])
    worker = Worker(server.url, queues=[queue, other], concurrency=3)
    lock = threading.Lock()
    now = peak = 0

    def enter() -> None:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)

    def leave() -> None:
        nonlocal now
        with lock:
            now -= 1

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> None:
        enter()
        time.sleep(0.001)
        leave()

    @worker.handler(other)
    async def awork(job: Job, ctx: JobContext) -> None:
        enter()
        await asyncio.sleep(0.001)
        leave()

    with running(worker):
        wait_until(lambda: worker.stats.completed == n, timeout=30, what="all done")
    assert peak <= 3
    assert client.queue(queue).counts.completed + client.queue(other).counts.completed == n


def test_a_handler_returning_after_stop_is_still_acked(
    server: ServerProcess, client: Client, queue: str
) -> None:
    entered = threading.Event()
    gate = threading.Event()
    worker = Worker(server.url, queues=[queue], concurrency=2, shutdown_timeout=30)

    @worker.handler(queue)
    def work(job: Job, ctx: JobContext) -> str:
        entered.set()
        gate.wait(10)
        return "finished late"

    with running(worker):
        job_id = client.enqueue(queue).job_id
        assert entered.wait(10)
        worker.stop()
        time.sleep(0.3)  # the worker waits for its running handler
        gate.set()
    job = client.get_job(job_id)
    assert (job.state, job.result) == ("completed", "finished late")
    assert (worker.stats.completed, worker.stats.released) == (1, 0)
    # The same worker runs again after that stop.
    with running(worker):
        again = client.enqueue(queue).job_id
        assert wait_for_state(client, again, "completed").result == "finished late"

"""Long-poll fetch: claim now, else wait on the notifier until work may exist or time is up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from jobbie.errors import JobbieError
from jobbie.models import FetchedJob
from jobbie.notifier import Notifier
from jobbie.store.base import Store
from jobbie.store.params import Fence, FetchParams, ReleaseParams

log = logging.getLogger("jobbie.server")

# A throttle window reopening is waited for a hair late so the claim sees the window open.
_WINDOW_SLACK_S = 0.002


async def fetch_jobs(
    store: Store,
    notifier: Notifier,
    params: FetchParams,
    timeout: float,
    disconnected: Callable[[], Awaitable[None]] | None = None,
) -> list[FetchedJob]:
    """Lease jobs, waiting up to `timeout` seconds for some to become available.

    The waiter subscribes before the first claim and is cleared before every claim, so a
    commit that lands between a claim finding nothing and the wait is never missed.
    `disconnected` returns when the client goes away: a worker that left must not be handed
    a job it will never run, so the wait ends without another claim, and jobs claimed while
    it left are handed back (released: no attempt used).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    watch: asyncio.Future[None] | None = None
    with notifier.subscribe(params.queues) as waiter:
        try:
            if disconnected is not None:
                watch = asyncio.ensure_future(disconnected())
                watch.add_done_callback(lambda _: waiter.signal())
            while True:
                waiter.clear()
                claim = await store.fetch(params)
                if claim.jobs:
                    if watch is not None and watch.done():
                        await _hand_back(store, params, claim.jobs)
                        return []
                    if len(claim.jobs) >= params.count:
                        # A full claim: more may be waiting that nobody was woken for.
                        notifier.pass_on({job.queue for job in claim.jobs})
                    return claim.jobs
                remaining = deadline - loop.time()
                if remaining <= 0 or notifier.closed:
                    return []
                if claim.retry_at is not None:
                    reopen = (claim.retry_at - store.clock.now_ms()) / 1000 + _WINDOW_SLACK_S
                    remaining = min(remaining, max(reopen, 0.0))
                await waiter.wait(remaining)
                if notifier.closed or (watch is not None and watch.done()):
                    return []
        finally:
            if watch is not None:
                watch.cancel()


async def _hand_back(store: Store, params: FetchParams, jobs: list[FetchedJob]) -> None:
    """The client left while its claim ran: release the jobs so another worker gets them."""
    for job in jobs:
        fence = Fence(worker_id=params.worker_id, attempt=job.attempt)
        with contextlib.suppress(JobbieError):  # gone meanwhile (cancelled, deleted)
            await store.release(ReleaseParams(job_id=job.job_id, fence=fence))
    log.info("fetch: client left during its claim, released %d job(s)", len(jobs))

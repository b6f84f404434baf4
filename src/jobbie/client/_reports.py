"""Coalesced acks and fails for the batching `Worker`.

Finished jobs put their report here; one flusher sends them as `ack/batch` and `fail/batch`
calls, flushed at once when no other handler is running, else within `flush_interval` or when
1,000 are waiting. A report that arrives while a flush is in flight goes out with the next one,
so a busy worker sends few, large calls and an idle one adds no delay. The ack call also asks
for `next` jobs for the worker's free slots, so a busy worker needs one round trip per batch.

Every entry is fenced (worker id and attempt), so a flush that failed in transit is simply
sent again (without `next`, whose jobs could otherwise be leased twice); per-entry answers
mark lost leases; a whole-request refusal (an oversized result) falls back to one call per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobbie.client.context import JobContext
from jobbie.client.errors import ServerUnreachable
from jobbie.client.types import Job
from jobbie.errors import (
    Conflict,
    JobbieError,
    PayloadTooLarge,
    Unavailable,
    ValidationError,
)

if TYPE_CHECKING:
    from jobbie.client.aio import AsyncClient

log = logging.getLogger("jobbie.worker")

MAX_BATCH = 1000  # the server's limit per ack/batch and fail/batch
_TRANSIENT = (ServerUnreachable, Unavailable)
_LOST_CODES = frozenset({"LEASE_LOST", "CONFLICT", "NOT_FOUND"})


@dataclass(eq=False)
class Report:
    """One finished job waiting to be told to the server."""

    ctx: JobContext
    result: Any = None  # for an ack
    error: str | None = None  # set for a fail
    backtrace: str | None = None

    @property
    def is_fail(self) -> bool:
        return self.error is not None


@dataclass
class Hooks:
    """What the reporter needs from its worker."""

    api: Callable[[], AsyncClient]
    queues: list[str]
    lease_duration: float | None
    busy_handlers: Callable[[], int]  # handlers still running (their reports may come soon)
    take_free_slots: Callable[[], int]  # slots to fill with `next` jobs (0 once stopping)
    start_jobs: Callable[[list[Job], int], None]  # the jobs got, and the slots taken for them
    deadline: Callable[[], float | None]  # give up retrying after this (during shutdown)
    on_outcome: Callable[[Report, str | None, JobbieError | None], None]
    settled: Callable[[Report], None]  # answered or given up on (perhaps told twice)
    fallback: Callable[[Report], Awaitable[None]]  # one call for this report alone
    backoff: Callable[[], Callable[[], float]]


class Reporter:
    """Collects reports and flushes them in batches from one task."""

    def __init__(self, hooks: Hooks, flush_interval: float) -> None:
        self.hooks = hooks
        self.flush_interval = flush_interval
        self._waiting: list[Report] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def busy(self) -> bool:
        """Reports are waiting or being sent (the fetch loop leaves free slots to them)."""
        return not self._idle.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobbie-reporter")

    async def stop(self) -> None:
        """Flush what is waiting now (retrying until the shutdown deadline), then end."""
        self._closing = True
        await self.flushed()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def flushed(self) -> None:
        """Return once nothing is waiting or in flight."""
        self._wake.set()
        await self._idle.wait()

    def put(self, report: Report) -> None:
        """Send `report` soon; `hooks.settled` hears when it is done with."""
        self._waiting.append(report)
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._waiting:
                self._idle.set()
                continue
            # Linger while other handlers may finish soon, so their reports share the call.
            until = loop.time() + self.flush_interval
            while (
                self.hooks.busy_handlers() > 0
                and len(self._waiting) < MAX_BATCH
                and not self._closing
            ):
                left = until - loop.time()
                if left <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._flush(batch)
            except Exception:
                log.exception("unexpected error while reporting %d job(s)", len(batch))
                for report in batch:
                    self.hooks.settled(report)
            if self._waiting:
                self._wake.set()
            else:
                self._idle.set()

    async def _flush(self, batch: list[Report]) -> None:
        acks = [r for r in batch if not r.is_fail]
        fails = [r for r in batch if r.is_fail]
        sends: list[Awaitable[None]] = []
        if acks:
            sends.append(self._send(acks, self._ack_call))
        if fails:
            sends.append(self._send(fails, self._fail_call))
        await asyncio.gather(*sends)

    async def _send(
        self,
        reports: list[Report],
        call: Callable[[list[Report], bool], Awaitable[list[tuple[str | None, str | None]]]],
    ) -> None:
        """Send until every report has an answer, retrying through outages."""
        backoff = self.hooks.backoff()
        first = True
        reports = self._drop_lost(reports)
        while reports:
            try:
                answers = await call(reports, first)
            except (PayloadTooLarge, ValidationError) as exc:
                log.warning("the server refused a batch of %d (%s); one by one", len(reports), exc)
                await asyncio.gather(*(self.hooks.fallback(r) for r in reports))
                for report in reports:
                    self.hooks.settled(report)
                return
            except _TRANSIENT as exc:
                first = False
                deadline = self.hooks.deadline()
                if deadline is not None and time.monotonic() > deadline:
                    log.error("giving up reporting %d job(s): %s", len(reports), exc)
                    break
                delay = backoff()
                log.warning(
                    "reporting %d job(s) failed (%s); retrying in %.2fs", len(reports), exc, delay
                )
                await asyncio.sleep(delay)
                reports = self._drop_lost(reports)
                continue
            except JobbieError as exc:
                log.error("could not report %d job(s): %s", len(reports), exc)
                break
            for report, (status, code) in zip(reports, answers, strict=True):
                if status is not None:
                    self.hooks.on_outcome(report, status, None)
                else:
                    text = f"the server answered {code}"
                    error = Conflict(text) if code in _LOST_CODES else JobbieError(text)
                    self.hooks.on_outcome(report, None, error)
                self.hooks.settled(report)
            return
        for report in reports:
            self.hooks.settled(report)

    def _drop_lost(self, reports: list[Report]) -> list[Report]:
        """The reports still worth sending: not those lost while they waited (a heartbeat said
        so, or the job was released)."""
        kept = []
        for report in reports:
            if report.ctx.lost:
                self.hooks.settled(report)
            else:
                kept.append(report)
        return kept

    async def _ack_call(
        self, reports: list[Report], with_next: bool
    ) -> list[tuple[str | None, str | None]]:
        api = self.hooks.api()
        pairs = [(r.ctx.job, r.result) for r in reports]
        slots = self.hooks.take_free_slots() if with_next else 0
        if slots == 0:
            results = await api.ack_batch(pairs)
        else:
            try:
                results, jobs = await api.ack_batch_and_fetch(
                    pairs,
                    queues=self.hooks.queues,
                    count=slots,
                    lease_duration=self.hooks.lease_duration,
                )
            except BaseException:
                self.hooks.start_jobs([], slots)
                raise
            self.hooks.start_jobs(jobs, slots)
        return [(r.status, r.code) for r in results]

    async def _fail_call(
        self, reports: list[Report], with_next: bool
    ) -> list[tuple[str | None, str | None]]:
        api = self.hooks.api()
        results = await api.fail_batch([(r.ctx.job, r.error or "", r.backtrace) for r in reports])
        return [(r.status or None, r.code or None) for r in results]

"""`Worker`: fetch jobs, run their handlers concurrently, heartbeat, ack or fail them.

One asyncio loop drives everything: one batched fetch loop (or `concurrency` single ones), a
reporter that coalesces acks and fails (`_reports.py`), one heartbeat loop for every running
job, and a task per async job. Sync handlers run on a pool of daemon threads, async handlers on
the loop. With the reporter a sync job needs no task: its thread posts the outcome to the loop
(many per wake-up), which hands it to the reporter, and goes straight on to the next prefetched
sync job, which inherits the slot. Connection errors never end the worker: every call is
retried with capped exponential backoff and logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import importlib
import inspect
import logging
import os
import random
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jobbie.client._calls import default_worker_id
from jobbie.client._failover import parse_urls
from jobbie.client._reports import Hooks, Report, Reporter
from jobbie.client._threads import DaemonThreadPool
from jobbie.client.aio import AsyncClient
from jobbie.client.client import DEFAULT_URL
from jobbie.client.context import JobContext, _check_json
from jobbie.client.errors import ServerUnreachable
from jobbie.client.types import HeartbeatUpdate, Job
from jobbie.errors import (
    Conflict,
    JobbieError,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    ValidationError,
)
from jobbie.models import QUEUE_NAME_PATTERN

log = logging.getLogger("jobbie.worker")

Handler = Callable[[Job, JobContext], Any]
"""A handler: `(job, ctx) -> result` (sync) or an `async def` of the same shape."""

H = TypeVar("H", bound=Handler)

_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)
_TRANSIENT = (ServerUnreachable, Unavailable)
_DEFAULT_LEASE = 60.0
_MAX_ERROR_CHARS = 64 * 1024
# Prefetched jobs wait here while another worker might have run them, so a worker holds about
# this much work per handler beyond its running jobs (judged by the average handler time), and
# none before it has seen a job finish: quick jobs are prefetched deeply, slow ones not at all.
_PREFETCH_WORK_S = 0.05
_PREFETCH_PER_SLOT = 8  # the default `prefetch`, per unit of concurrency
_DURATION_WEIGHT = 0.1  # of each new job in the running average


@dataclass
class WorkerStats:
    """Counters of what this worker did since it started."""

    completed: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0


class _Backoff:
    """Capped exponential delays with jitter, reset by a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return float(delay * random.uniform(0.75, 1.25))

    def reset(self) -> None:
        self.failures = 0


def _is_async(handler: Handler) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an async __call__ counts too
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


def _describe_failure(job: Job, exc: BaseException) -> tuple[str, str]:
    """The error and backtrace a job whose handler raised `exc` is failed with (logged)."""
    log.info("job %s (%s) failed: %s: %s", job.id, job.queue, type(exc).__name__, exc)
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


def _clip(error: str, backtrace: str | None) -> tuple[str, str | None]:
    """Keep the message and traceback well inside the server's 1 MiB limit."""
    if backtrace is not None and len(backtrace) > _MAX_ERROR_CHARS:
        backtrace = "...\n" + backtrace[-_MAX_ERROR_CHARS:]
    return error[:_MAX_ERROR_CHARS], backtrace


def _unencodable(result: Any) -> str | None:
    """Why `result` cannot be sent as an ack's result, or None when it can."""
    try:
        _check_json(result)
    except (TypeError, ValueError) as exc:
        return f"the handler's result could not be encoded as JSON: {exc}"
    return None


def _check_queue(name: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise ValueError(f"invalid queue name {name!r}: use 1-200 characters of [A-Za-z0-9._:-]")
    return name


class Worker:
    """Runs registered handlers for the jobs of its queues.

    `queues` defaults to the queues that have handlers; a job from a queue without a handler
    is failed with a clear error, never acked. `concurrency` jobs run at once.

    By default (`fetch_batch=True`) one fetch loop asks for as many jobs as there are free
    slots (long-polling when none is ready), and acks and fails are coalesced into batch calls
    sent at once when no other handler is running, else within `flush_interval` seconds; the
    ack call also leases the next jobs for the free slots. With `fetch_batch=False` each slot
    long-polls on its own and acks its job alone (leasing its next job in the same call).
    Once a job has finished, a batching worker also prefetches: it holds jobs beyond those
    running, leased and heartbeated, so the next ones are at hand when a handler finishes:
    about 50 ms of work per handler by the average handler time, at most `prefetch` jobs
    (default: 8 x `concurrency`, at most 1,000). Quick jobs are prefetched deeply, jobs of a
    second or more not at all. A job held but not started when the worker stops goes back to
    the server at once. `prefetch=0` turns this off.
    Running jobs are heartbeated together every
    `heartbeat_interval` seconds (sooner for short leases). On `stop()`, SIGTERM or SIGINT the
    worker stops fetching, lets running jobs finish for up to `shutdown_timeout` seconds, then
    hands each remaining job back to the server with its last checkpoint, so it runs again from
    there without using a retry. A second signal skips the wait.

    `url` may name several servers sharing one PostgreSQL database (a list, or a string of
    comma-separated URLs): the worker uses one at a time and moves on to the next when it stops
    answering, as `Client` does. Its long-polls, heartbeats, acks and fails go wherever the
    client is; leases taken through a server that died are acked through the next one.
    """

    def __init__(
        self,
        url: str | Sequence[str] = DEFAULT_URL,
        *,
        queues: Iterable[str] | None = None,
        concurrency: int = 10,
        api_key: str | None = None,
        heartbeat_interval: float = 15.0,
        shutdown_timeout: float = 30.0,
        worker_id: str | None = None,
        lease_duration: float | None = None,
        poll_timeout: float = 30.0,
        fetch_batch: bool = True,
        timeout: float = 30.0,
        flush_interval: float = 0.005,
        prefetch: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if not 0 <= poll_timeout <= 60:
            raise ValueError("poll_timeout must be between 0 and 60 seconds")
        if flush_interval < 0:
            raise ValueError("flush_interval must not be negative")
        if prefetch is not None and prefetch < 0:
            raise ValueError("prefetch must not be negative")
        self.url = url
        self.urls = parse_urls(url)
        self.queues = [_check_queue(q) for q in queues] if queues is not None else None
        self.concurrency = concurrency
        self.api_key = api_key
        self.heartbeat_interval = heartbeat_interval
        self.shutdown_timeout = shutdown_timeout
        self.lease_duration = lease_duration
        self.poll_timeout = poll_timeout
        self.fetch_batch = fetch_batch
        self.flush_interval = flush_interval
        if prefetch is None:
            prefetch = _PREFETCH_PER_SLOT * concurrency
        self.prefetch = min(prefetch, 1000) if fetch_batch else 0
        self.timeout = timeout
        self.stats = WorkerStats()
        self.worker_id = worker_id or default_worker_id()
        self._client: AsyncClient | None = None
        self._handlers: dict[str, Handler] = {}
        self._async_queues: dict[str, bool] = {}
        self._running: dict[str, JobContext] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._stop_requested = False
        self._hurry_requested = False
        self._deadline: float | None = None
        self._held = 0  # jobs leased to this worker and not yet reported (running or waiting)
        self._handling = 0  # jobs whose handler runs (at most `concurrency`)
        self._waiting: collections.deque[JobContext] = collections.deque()  # prefetched, in order
        # Taken to pop `_waiting`: a handler thread that finished takes its next job itself.
        self._waiting_lock = threading.Lock()
        self._in_threads = 0  # pool threads running sync handlers without a task (batching)
        self._threads_idle: asyncio.Event | None = None
        self._mean_duration: float | None = None  # of recent handlers, once one has finished
        self._slot_freed: asyncio.Event | None = None
        self._busy_handlers = 0
        self._reporter: Reporter | None = None
        self._queues: list[str] = []
        self._pool: DaemonThreadPool | None = None

    @property
    def _api(self) -> AsyncClient:
        assert self._client is not None, "the worker is not running"
        return self._client

    # --- registration ---------------------------------------------------------------------

    def register(self, queue: str, handler: Handler) -> None:
        """Run `handler(job, ctx)` for the jobs of `queue`; its return value (any JSON value)
        is the ack result and an exception fails the job with its message and traceback."""
        self._handlers[_check_queue(queue)] = handler
        self._async_queues[queue] = _is_async(handler)

    def handler(self, queue: str) -> Callable[[H], H]:
        """Decorator form of `register`: `@worker.handler("emails.send")`."""

        def decorate(fn: H) -> H:
            self.register(queue, fn)
            return fn

        return decorate

    @property
    def running(self) -> dict[str, JobContext]:
        """The jobs running now, by id."""
        return dict(self._running)

    # --- lifecycle ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop()`, SIGTERM or SIGINT; blocks the calling thread."""
        asyncio.run(self.arun())

    def stop(self, *, wait: bool = True) -> None:
        """Stop fetching and shut down (safe from any thread or handler). With `wait=False`
        running jobs are released at once instead of after `shutdown_timeout`."""
        self._stop_requested = True
        self._hurry_requested = self._hurry_requested or not wait
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake_stop)

    def _wake_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._hurry_requested and self._hurry is not None:
            self._hurry.set()

    def _on_signal(self, signum: int) -> None:
        first = not self._stop_requested
        log.info(
            "signal %s: %s",
            signal.Signals(signum).name,
            "draining" if first else "releasing running jobs now",
        )
        self.stop(wait=first)

    async def arun(self, *, install_signal_handlers: bool = True) -> None:
        """Run inside the current event loop until stopped; SIGTERM/SIGINT drain the worker
        when called from the main thread and `install_signal_handlers` is true."""
        if self._loop is not None:
            raise RuntimeError("this worker is already running")
        queues = self.queues if self.queues is not None else sorted(self._handlers)
        if not queues:
            raise ValueError("the worker has no queues: register a handler or pass queues=")
        for name in queues:
            if name not in self._handlers:
                log.warning("no handler for queue %r: its jobs will be failed", name)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopping, self._hurry = asyncio.Event(), asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._threads_idle = asyncio.Event()
        if self._stop_requested:  # stop() came before the loop existed
            self._wake_stop()
        client = self._client = AsyncClient(
            self.urls,
            api_key=self.api_key,
            timeout=self.timeout,
            worker_id=self.worker_id,
            # every slot's long-poll, plus reports, heartbeats and checkpoints beside them
            max_connections=(1 if self.fetch_batch else self.concurrency) + 16,
        )
        signals = (signal.SIGTERM, signal.SIGINT)
        installed = (
            install_signal_handlers and threading.current_thread() is threading.main_thread()
        )
        if installed:
            for sig in signals:
                loop.add_signal_handler(sig, self._on_signal, sig)
        pool = self._pool = DaemonThreadPool(self.concurrency, "jobbie-handler", loop)
        self._queues = list(queues)
        self._held, self._busy_handlers, self._mean_duration = 0, 0, None
        self._handling = self._in_threads = 0
        self._waiting.clear()
        if self.fetch_batch:
            self._reporter = Reporter(self._hooks(), self.flush_interval)
            self._reporter.start()
        fetchers = [
            asyncio.create_task(self._fetch_loop(queues, pool))
            for _ in range(1 if self.fetch_batch else self.concurrency)
        ]
        beats = asyncio.create_task(self._heartbeat_loop())
        log.info(
            "worker %s started: queues %s, concurrency %d, server %s",
            self.worker_id,
            ", ".join(queues),
            self.concurrency,
            ", ".join(self.urls),
        )
        try:
            await self._stopping.wait()
        finally:
            await self._shut_down(fetchers, beats)
            pool.shutdown()
            if installed:
                for sig in signals:
                    loop.remove_signal_handler(sig)
            await client.aclose()
            self._loop = self._client = self._reporter = self._pool = None
            self._stop_requested = self._hurry_requested = False
            self._deadline = None
            log.info("worker %s stopped", self.worker_id)

    async def _shut_down(
        self, fetchers: list[asyncio.Task[None]], beats: asyncio.Task[None]
    ) -> None:
        # Closing a parked long-poll is safe: the server leases nothing to a gone client.
        for task in fetchers:
            task.cancel()
        await asyncio.gather(*fetchers, return_exceptions=True)
        await self._release_waiting()
        self._deadline = time.monotonic() + self.shutdown_timeout
        if self._tasks or self._in_threads:
            log.info(
                "waiting up to %.1fs for %d running job(s)",
                self.shutdown_timeout,
                len(self._tasks) + self._in_threads,
            )
            assert self._hurry is not None
            everything = asyncio.create_task(self._handlers_finished())
            hurry = asyncio.create_task(self._hurry.wait())
            await asyncio.wait(
                [everything, hurry],
                timeout=self.shutdown_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            everything.cancel()
            hurry.cancel()
        if self._reporter is not None:
            # Finished jobs are acked before the rest is handed back.
            await self._reporter.stop()
        await self._release_all()
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)

    async def _handlers_finished(self) -> None:
        """Return once no handler runs, in a task or on a thread."""
        assert self._threads_idle is not None
        while self._tasks or self._in_threads:
            if self._tasks:
                await asyncio.wait(list(self._tasks))
            else:
                self._threads_idle.clear()
                await self._threads_idle.wait()

    async def _release_all(self) -> None:
        leftovers = [ctx for ctx in self._running.values() if not ctx.lost]
        for ctx in leftovers:
            ctx.mark_cancelled()
        await asyncio.gather(*(self._release(ctx) for ctx in leftovers))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _release(self, ctx: JobContext) -> None:
        # Marked lost first so the handler's late result is never sent.
        ctx.mark_lost()
        checkpoint = ctx.checkpoint_value() if ctx.has_checkpoint else None
        try:
            await self._api.release(ctx.job, checkpoint)
        except Exception as exc:
            log.warning("could not release job %s: %s", ctx.job_id, exc)
            return
        self.stats.released += 1
        log.info("released job %s (attempt %d) to the server", ctx.job_id, ctx.attempt)

    # --- fetching -------------------------------------------------------------------------

    async def _take_slots(self) -> int:
        """Wait for a free slot and take it (all free slots, up to 1000, when batching).

        While reports are being flushed the free slots are left to them: the ack call leases
        the next jobs itself, so fetching beside it would only add round trips."""
        assert self._slot_freed is not None
        while self._free == 0 or (self._reporter is not None and self._reporter.busy):
            self._slot_freed.clear()
            if self._free and self._reporter is not None:
                # Wake when the flush ends (it may lease nothing).
                flushed = asyncio.ensure_future(self._reporter.flushed())
                freed = asyncio.ensure_future(self._slot_freed.wait())
                await asyncio.wait([flushed, freed], return_when=asyncio.FIRST_COMPLETED)
                flushed.cancel()
                freed.cancel()
            else:
                await self._slot_freed.wait()
        taken = min(self._free, 1000) if self.fetch_batch else 1
        self._held += taken
        return taken

    @property
    def _free(self) -> int:
        """Slots for more jobs: one per handler, plus the prefetch (see `_PREFETCH_WORK_S`)."""
        return max(0, self.concurrency + self._prefetch_now() - self._held)

    def _prefetch_now(self) -> int:
        if self._mean_duration is None or not self.prefetch:
            return 0
        if self._mean_duration <= 0:
            return self.prefetch
        return min(self.prefetch, int(self.concurrency * _PREFETCH_WORK_S / self._mean_duration))

    def _give_slots(self, count: int) -> None:
        assert self._slot_freed is not None
        self._held -= count
        if count:
            self._slot_freed.set()

    def _take_free_slots(self) -> int:
        """All free slots, for the jobs an ack call leases; none once stopping."""
        if self._stop_requested or self._free == 0:
            return 0
        taken = min(self._free, 1000)
        self._held += taken
        return taken

    def _start_jobs(self, jobs: list[Job], slots: int) -> None:
        """Run `jobs` in `slots` taken for them; the slots left over are free again."""
        assert self._pool is not None
        self._give_slots(slots - len(jobs))
        for job in jobs:
            self._start(job, self._pool)

    async def _fetch_loop(self, queues: list[str], pool: DaemonThreadPool) -> None:
        backoff = _Backoff()
        while True:
            slots = await self._take_slots()
            try:
                jobs = await self._fetch(queues, slots)
            except asyncio.CancelledError:
                self._give_slots(slots)
                raise
            except Exception as exc:
                self._give_slots(slots)
                delay = backoff.next()
                if isinstance(exc, JobbieError):
                    # Every fetch loop sees the same outage: warn on the first failures only.
                    level = logging.WARNING if backoff.failures % 20 == 1 else logging.DEBUG
                    log.log(level, "fetch failed (%s); retrying in %.2fs", exc, delay)
                else:
                    log.exception("unexpected error while fetching; retrying in %.2fs", delay)
                await asyncio.sleep(delay)
                continue
            if backoff.failures:
                log.info("connected to %s again", self._api.url)
            backoff.reset()
            self._start_jobs(jobs, slots)

    async def _fetch(self, queues: list[str], slots: int) -> list[Job]:
        if self.fetch_batch:
            return await self._api.fetch(
                queues, timeout=self.poll_timeout, count=slots, lease_duration=self.lease_duration
            )
        job = await self._api.fetch(
            queues, timeout=self.poll_timeout, lease_duration=self.lease_duration
        )
        return [] if job is None else [job]

    # --- running a job --------------------------------------------------------------------

    def _start(self, job: Job, pool: DaemonThreadPool) -> None:
        assert self._loop is not None
        ctx = JobContext(
            job, loop=self._loop, save=self._save_checkpoint, save_timeout=self.timeout
        )
        stale = self._running.get(job.id)
        if stale is not None:
            # Handed out again while an earlier lease of it was held here (an operator released
            # it, say): the server leases only a job nobody holds, so that lease is gone.
            self._lost(stale, LeaseLost(f"job {job.id} was leased to this worker again"))
        self._running[job.id] = ctx
        if self._handling < self.concurrency:
            self._launch(ctx, pool)
        else:
            self._waiting.append(ctx)  # prefetched: runs when a handler is free

    def _launch(self, ctx: JobContext, pool: DaemonThreadPool) -> None:
        self._handling += 1
        self._busy_handlers += 1
        handler = self._thread_handler(ctx)
        if handler is not None:
            self._in_threads += 1
            pool.submit(functools.partial(self._run_in_thread, ctx, handler, pool))
        else:
            self._spawn(ctx, self._run(ctx, pool))

    def _thread_handler(self, ctx: JobContext) -> Handler | None:
        """The sync handler to run `ctx` on a pool thread without a task, else None.

        A batching worker's acks and fails are handed to its reporter without waiting, so a
        sync handler's outcome is dealt with in a plain callback on the loop."""
        if self._reporter is None:
            return None
        queue = ctx.job.queue
        handler = self._handlers.get(queue)
        if handler is None or self._async_queues.get(queue):
            return None
        return handler

    def _spawn(self, ctx: JobContext, run: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(run, name=f"jobbie-job-{ctx.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, ctx: JobContext, pool: DaemonThreadPool, returned: Awaitable[Any] | None = None
    ) -> None:
        """A job's task: run its handler (or await what a sync handler `returned` on a pool
        thread), then ack or fail the job."""
        job = ctx.job
        holds_slot = True
        try:
            handler = self._handlers.get(job.queue)
            error: str | None = None
            backtrace: str | None = None
            result: Any = None
            started = time.monotonic()
            try:
                if returned is not None:
                    result = await returned
                elif handler is None:
                    error = f"no handler registered for queue {job.queue!r} on worker "
                    error += self.worker_id
                    log.error("job %s: %s", job.id, error)
                elif self._async_queues.get(job.queue):
                    result = await handler(job, ctx)
                else:
                    result = await pool.run(lambda: handler(job, ctx))
                    if inspect.isawaitable(result):  # e.g. a partial of an async function
                        result = await result
            except Exception as exc:
                error, backtrace = _describe_failure(job, exc)
            finally:
                self._busy_handlers -= 1
                self._turn_done(time.monotonic() - started, pool)
            if self._reporter is not None:
                # The slot is free once the handler is done: the ack call may fill it.
                holds_slot = False
                self._give_slots(1)
            if error is not None:
                await self._fail(ctx, error, backtrace)
            else:
                holds_slot = await self._ack(ctx, result, holds_slot)
        except Exception:
            log.exception("job %s: unexpected error in the worker; its lease will expire", job.id)
        finally:
            if not (ctx.finishing and self._reporter is not None):
                self._forget(ctx)  # (else once the reporter has its answer)
            if holds_slot:
                self._give_slots(1)

    def _run_in_thread(self, ctx: JobContext, handler: Handler, pool: DaemonThreadPool) -> None:
        """On a pool thread: run the handler and post its outcome to the loop; then go on with
        the next prefetched job if a sync handler can take it here (it inherits the slot)."""
        while True:
            result: Any = None
            error: BaseException | None = None
            started = time.monotonic()
            try:
                result = handler(ctx.job, ctx)
            except BaseException as exc:
                error = exc
            duration = time.monotonic() - started
            # Not after an awaitable result (it keeps the slot while the loop awaits it), nor
            # after SystemExit and the like (they end the worker).
            following = None
            if isinstance(error, Exception) or (error is None and not inspect.isawaitable(result)):
                following = self._take_for_thread(pool)
            pool.post(self._thread_done, ctx, result, error, duration, following is not None)
            del result, error  # not kept alive while the next handler runs
            if following is None:
                return
            ctx, handler = following

    def _take_for_thread(self, pool: DaemonThreadPool) -> tuple[JobContext, Handler] | None:
        """On a pool thread that just ran a handler: the next prefetched job, taken off the
        queue, when it is due to start here; else None (the loop then deals with it)."""
        if not self._waiting:
            return None
        with self._waiting_lock:
            # (`pool` is not ours after a shutdown: a handler that outlived it comes back late.)
            if not self._waiting or self._stop_requested or pool is not self._pool:
                return None
            ctx = self._waiting[0]
            handler = self._thread_handler(ctx)
            if handler is None or ctx.lost:
                return None
            self._waiting.popleft()
        return ctx, handler

    def _thread_done(
        self,
        ctx: JobContext,
        result: Any,
        error: BaseException | None,
        duration: float,
        passed_on: bool,
    ) -> None:
        """On the loop: a sync handler returned on a pool thread, which took the next
        prefetched job into the same slot when `passed_on`; report the outcome."""
        assert self._pool is not None and self._threads_idle is not None
        if passed_on:
            self._note_duration(duration)
        else:
            self._in_threads -= 1
            if not self._in_threads:
                self._threads_idle.set()
            if error is None and inspect.isawaitable(result):  # e.g. a partial of an async fn
                self._spawn(ctx, self._run(ctx, self._pool, returned=result))
                return
            self._busy_handlers -= 1
            self._turn_done(duration, self._pool)
        # The slot is free once the handler is done: the ack call may fill it.
        self._give_slots(1)
        if error is None:
            self._put_ack(ctx, result)
        elif isinstance(error, Exception):
            self._put_fail(ctx, *_describe_failure(ctx.job, error))
        else:
            self._forget(ctx)
            raise error  # SystemExit and the like end the worker, as from a task

    def _forget(self, ctx: JobContext) -> None:
        """Stop tracking `ctx` (not a later lease of the same job)."""
        if self._running.get(ctx.job_id) is ctx:
            del self._running[ctx.job_id]

    def _note_duration(self, duration: float) -> None:
        if self._mean_duration is None:
            self._mean_duration = duration
        else:
            self._mean_duration += _DURATION_WEIGHT * (duration - self._mean_duration)

    def _turn_done(self, duration: float, pool: DaemonThreadPool) -> None:
        """A handler is free: note how long it took, and start the next prefetched job."""
        self._handling -= 1
        self._note_duration(duration)
        while True:
            with self._waiting_lock:
                if not self._waiting or self._stop_requested:
                    return
                ctx = self._waiting.popleft()
            if ctx.lost:  # a heartbeat found its lease gone while it waited
                self._forget(ctx)
                self._give_slots(1)
                continue
            self._launch(ctx, pool)
            return

    async def _release_waiting(self) -> None:
        """Hand the prefetched jobs that never started back to the server at once."""
        with self._waiting_lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        await asyncio.gather(*(self._release(ctx) for ctx in waiting if not ctx.lost))
        for ctx in waiting:
            self._forget(ctx)
        self._give_slots(len(waiting))

    def _hooks(self) -> Hooks:
        return Hooks(
            api=lambda: self._api,
            queues=self._queues,
            lease_duration=self.lease_duration,
            busy_handlers=lambda: self._busy_handlers,
            take_free_slots=self._take_free_slots,
            start_jobs=self._start_jobs,
            deadline=lambda: self._deadline,
            on_outcome=self._on_outcome,
            settled=lambda report: self._forget(report.ctx),
            fallback=self._report_alone,
            backoff=lambda: _Backoff().next,
        )

    def _on_outcome(self, report: Report, status: str | None, error: JobbieError | None) -> None:
        ctx = report.ctx
        if status is not None:
            if report.is_fail:
                self.stats.failed += 1
            else:
                self.stats.completed += 1
        elif isinstance(error, Conflict):
            self._lost(ctx, error)
        else:
            log.error("could not report job %s: %s", ctx.job_id, error)

    def _lost(self, ctx: JobContext, error: JobbieError) -> None:
        # LeaseLost is a Conflict: the job expired, was reassigned or was deleted.
        ctx.mark_lost()
        self.stats.lost += 1
        log.warning("job %s is no longer ours: %s", ctx.job_id, error)

    async def _report_alone(self, report: Report) -> None:
        """One ack or fail call for this report (the batch it was in was refused whole)."""
        if report.is_fail:
            await self._fail_alone(report.ctx, report.error or "", report.backtrace)
        else:
            await self._ack_alone(report.ctx, report.result)

    async def _ack(self, ctx: JobContext, result: Any, holds_slot: bool) -> bool:
        """Ack the job; returns whether this task still holds its slot (an unbatched ack
        hands its slot to the next job it leased)."""
        if self._reporter is not None:
            self._put_ack(ctx, result)
            return holds_slot
        if ctx.lost:  # the lease is gone: the result is dropped
            return holds_slot
        ctx.finishing = True
        unencodable = _unencodable(result)
        if unencodable is not None:
            await self._fail(ctx, unencodable, None)
            return holds_slot
        if not self._stop_requested:
            try:
                _, jobs = await self._api.ack_and_fetch(
                    ctx.job, result, queues=self._queues, lease_duration=self.lease_duration
                )
            except (Conflict, NotFound) as exc:
                self._lost(ctx, exc)
                return holds_slot
            except (PayloadTooLarge, ValidationError) as exc:
                await self._fail(ctx, f"the server refused the handler's result: {exc}", None)
                return holds_slot
            except _TRANSIENT:
                pass  # perhaps not delivered: again below, without leasing more
            else:
                self.stats.completed += 1
                if not jobs:
                    return holds_slot
                self._forget(ctx)
                self._start_jobs(jobs, 1)  # the next job takes over this slot
                return False
        await self._ack_alone(ctx, result)
        return holds_slot

    def _put_ack(self, ctx: JobContext, result: Any) -> None:
        """Hand the ack to the reporter (batching workers), which forgets the job once it is
        answered; a job whose lease is gone is forgotten now (its result is dropped)."""
        assert self._reporter is not None
        if ctx.lost:
            self._forget(ctx)
            return
        unencodable = _unencodable(result)
        if unencodable is not None:
            self._put_fail(ctx, unencodable, None)
            return
        ctx.finishing = True
        self._reporter.put(Report(ctx, result=result))

    async def _ack_alone(self, ctx: JobContext, result: Any) -> None:
        try:
            status = await self._report(ctx, lambda: self._api.ack(ctx.job, result))
        except (PayloadTooLarge, ValidationError) as exc:
            await self._fail_alone(ctx, f"the server refused the handler's result: {exc}", None)
            return
        if status is not None:
            self.stats.completed += 1

    async def _fail(self, ctx: JobContext, error: str, backtrace: str | None) -> None:
        if self._reporter is not None:
            self._put_fail(ctx, error, backtrace)
        elif not ctx.lost:
            ctx.finishing = True
            await self._fail_alone(ctx, *_clip(error, backtrace))

    def _put_fail(self, ctx: JobContext, error: str, backtrace: str | None) -> None:
        """Hand the fail to the reporter (batching workers), as `_put_ack` does an ack."""
        assert self._reporter is not None
        if ctx.lost:
            self._forget(ctx)
            return
        ctx.finishing = True
        error, backtrace = _clip(error, backtrace)
        self._reporter.put(Report(ctx, error=error, backtrace=backtrace))

    async def _fail_alone(self, ctx: JobContext, error: str, backtrace: str | None) -> None:
        try:
            answer = await self._report(ctx, lambda: self._api.fail(ctx.job, error, backtrace))
        except JobbieError as exc:
            log.error("could not fail job %s: %s", ctx.job_id, exc)
            return
        if answer is not None:
            self.stats.failed += 1

    async def _report(self, ctx: JobContext, call: Callable[[], Awaitable[Any]]) -> Any:
        """Send an ack or fail, retrying through outages; None when it was not delivered."""
        backoff = _Backoff()
        ctx.finishing = True
        while not ctx.lost:
            try:
                return await call()
            except (Conflict, NotFound) as exc:
                self._lost(ctx, exc)
                return None
            except _TRANSIENT as exc:
                if self._deadline is not None and time.monotonic() > self._deadline:
                    log.error("giving up reporting job %s: %s", ctx.job_id, exc)
                    return None
                delay = backoff.next()
                log.warning(
                    "reporting job %s failed (%s); retrying in %.2fs", ctx.job_id, exc, delay
                )
                await asyncio.sleep(delay)
        return None

    # --- heartbeats and checkpoints -------------------------------------------------------

    def _beat_every(self) -> float:
        leases = [ctx.job.lease_duration or _DEFAULT_LEASE for ctx in self._running.values()]
        return min([self.heartbeat_interval, *(lease / 3 for lease in leases)])

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._beat_every())
            try:
                await self._heartbeat(list(self._running.values()))
            except JobbieError as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("unexpected error in the heartbeat loop")

    async def _save_checkpoint(self, ctx: JobContext) -> None:
        try:
            await self._heartbeat([ctx])
        except JobbieError as exc:
            log.warning(
                "could not save the checkpoint of job %s (%s); the next heartbeat will",
                ctx.job_id,
                exc,
            )

    async def _heartbeat(self, contexts: list[JobContext]) -> None:
        """One heartbeat for `contexts` (a liveness ping when empty), with whatever progress
        and checkpoints they have not sent yet; applies `cancel` and `lost` answers."""
        updates: dict[str, HeartbeatUpdate] = {}
        sent: dict[str, tuple[int, int]] = {}
        for ctx in contexts:
            if ctx.lost:
                continue
            update: HeartbeatUpdate = {"attempt": ctx.attempt}
            versions = (ctx.progress_version, ctx.checkpoint_version)
            if versions[0] != ctx.progress_sent and ctx.last_progress is not None:
                update["progress"] = ctx.last_progress
            if versions[1] != ctx.checkpoint_sent and ctx.has_checkpoint:
                update["checkpoint"] = ctx.checkpoint_value()
            updates[ctx.job_id] = update
            sent[ctx.job_id] = versions
        try:
            answers = await self._api.heartbeat(updates, worker_id=self.worker_id)
        except (PayloadTooLarge, ValidationError) as exc:
            if all(len(update) == 1 for update in updates.values()):
                raise
            # One oversized checkpoint must not stop every lease from being extended.
            log.error("the server refused a progress or checkpoint, dropping them: %s", exc)
            bare: dict[str, HeartbeatUpdate] = {
                job_id: {"attempt": update["attempt"]} for job_id, update in updates.items()
            }
            answers = await self._api.heartbeat(bare, worker_id=self.worker_id)
        for ctx in contexts:
            if ctx.job_id not in sent:
                continue
            ctx.progress_sent, ctx.checkpoint_sent = sent[ctx.job_id]
            status = answers.get(ctx.job_id)
            if status == "cancel" and not ctx.cancelled:
                log.info("job %s: cancel requested", ctx.job_id)
                ctx.mark_cancelled()
            elif status == "lost" and not ctx.lost and not ctx.finishing:
                # (A finishing job's ack or fail answer says whether it was still ours.)
                log.warning("job %s: lease lost; its result will be dropped", ctx.job_id)
                self.stats.lost += 1
                ctx.mark_lost()


def load_worker(target: str) -> Worker:
    """The Worker named by `module:attribute` (or a function there that returns one); the
    current directory is importable, as with `python -m`."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected module:attribute, got {target!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Worker) and callable(obj):
        obj = obj()
    if not isinstance(obj, Worker):
        raise TypeError(f"{target} is {type(obj).__name__}, not a jobbie.Worker")
    return obj

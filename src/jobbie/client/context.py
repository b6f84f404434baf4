"""`JobContext`: what a handler can do with the job it runs (checkpoint, progress, cancel)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from jobbie.client.types import Job

_NOTHING = object()
# Guards the lazy creation of a context's cancel Event (a threading.Event per job costs more
# than the rest of starting it; most handlers never wait on one).
_EVENT_LOCK = threading.Lock()


def _check_json(value: Any) -> None:
    """Raise TypeError here, in the handler, for a value that cannot be sent as JSON."""
    msgspec.json.encode(value)


class JobContext:
    """Handed to a handler with its job: save checkpoints, report progress, notice cancels.

    Sync handlers run on a worker thread and async handlers on the event loop; every method
    here is safe from either.
    """

    def __init__(
        self,
        job: Job,
        *,
        loop: asyncio.AbstractEventLoop,
        save: Callable[[JobContext], Awaitable[None]],
        save_timeout: float,
    ) -> None:
        self.job = job
        self._loop = loop
        self._save = save
        self._save_timeout = save_timeout
        self._cancel_set = False
        self._cancel: threading.Event | None = None
        self._lost = False
        self._checkpoint: Any = _NOTHING
        self._progress: dict[str, Any] | None = None
        # Bumped on every change, so a heartbeat only clears what it actually sent.
        self.checkpoint_version = 0
        self.progress_version = 0
        self.checkpoint_sent = 0
        self.progress_sent = 0
        self._tasks: set[asyncio.Future[None]] = set()
        # Set once the handler returned and its ack or fail is being sent.
        self.finishing = False

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def queue(self) -> str:
        """The queue the job came from."""
        return self.job.queue

    @property
    def attempt(self) -> int:
        """This attempt's number (1 on the first run)."""
        return self.job.attempt

    @property
    def payload(self) -> Any:
        """The job's payload, decoded."""
        return self.job.payload

    @property
    def cancelled(self) -> bool:
        """True once the job should stop: a cancel was requested (heard on a heartbeat), the
        lease was lost, or the worker is shutting down past its grace period."""
        return self._cancel_set

    @property
    def lost(self) -> bool:
        """True when the server says the job is no longer ours (its result will be dropped)."""
        return self._lost

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a sync handler until the job is cancelled or `timeout` passes; returns
        `cancelled`. Async handlers should poll `cancelled` instead."""
        if self._cancel is None:
            with _EVENT_LOCK:
                if self._cancel is None:
                    event = threading.Event()
                    if self._cancel_set:
                        event.set()
                    self._cancel = event
        return self._cancel.wait(timeout)

    @property
    def has_checkpoint(self) -> bool:
        """Whether this attempt saved a checkpoint."""
        return self._checkpoint is not _NOTHING

    @property
    def last_checkpoint(self) -> Any:
        """The checkpoint saved last by this attempt, else the one the job started with."""
        return self.job.checkpoint if self._checkpoint is _NOTHING else self._checkpoint

    @property
    def last_progress(self) -> dict[str, Any] | None:
        """The progress reported last (`{current, total, message}`), or None."""
        return self._progress

    def checkpoint(self, data: Any) -> None:
        """Save `data` (any JSON value) as the job's checkpoint on the server now.

        A later attempt of the job finds it in `job.checkpoint`. From a sync handler this
        blocks until the server has it; from an async handler it is sent in the background
        (use `await ctx.acheckpoint(data)` to wait). When the server cannot be reached the
        checkpoint is kept and sent with the next heartbeat.
        """
        _check_json(data)
        self._checkpoint = data
        self.checkpoint_version += 1
        if self._on_loop():
            task = self._loop.create_task(self._save_quietly())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self._save_quietly(), self._loop)
        except RuntimeError:  # the loop is closed: the worker has stopped
            return
        with contextlib.suppress(TimeoutError, concurrent.futures.CancelledError):
            future.result(self._save_timeout)

    async def acheckpoint(self, data: Any) -> None:
        """`checkpoint` for async handlers: returns once the server has the checkpoint."""
        _check_json(data)
        self._checkpoint = data
        self.checkpoint_version += 1
        await self._save_quietly()

    def progress(
        self,
        current: float | None = None,
        total: float | None = None,
        message: str | None = None,
    ) -> None:
        """Report progress; it goes to the server with the next heartbeat."""
        progress = {"current": current, "total": total, "message": message}
        _check_json(progress)
        self._progress = progress
        self.progress_version += 1

    # --- for the worker -------------------------------------------------------------------

    def checkpoint_value(self) -> Any:
        """The unsent checkpoint's value (only meaningful when `has_checkpoint`)."""
        return self._checkpoint

    def mark_cancelled(self) -> None:
        """The server asked to cancel the job (or the worker gave it back)."""
        self._set_cancel()

    def _set_cancel(self) -> None:
        with _EVENT_LOCK:
            self._cancel_set = True
            if self._cancel is not None:
                self._cancel.set()

    def mark_lost(self) -> None:
        """The server no longer counts the job as ours."""
        self._lost = True
        self._set_cancel()

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def _save_quietly(self) -> None:
        await self._save(self)

"""The scheduler: a background task that runs the store's maintenance every interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobbie.store.base import Store

log = logging.getLogger("jobbie.scheduler")


class Scheduler:
    """Promotes due jobs, reclaims expired leases, expires jobs, finishes drains, prunes."""

    def __init__(self, store: Store, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobbie-scheduler")

    async def stop(self) -> None:
        """Let the current pass finish, then end the task."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def run_once(self) -> dict[str, int]:
        report = await self._store.maintain()
        changed = {name: n for name, n in report.items() if n}
        if changed:
            log.debug("maintenance", extra={"changes": changed})
        return report

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:
                # A failed pass is logged and retried next interval; it must not end the loop.
                log.exception("scheduler pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stop.wait()

"""The background task that keeps the console's per-minute queue history."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobbie.store.base import Store
from jobbie.store.history import SNAPSHOT_INTERVAL_S

log = logging.getLogger("jobbie.server")


class HistoryRecorder:
    """Snapshots every queue every few seconds (the store keeps a minute's last one)."""

    def __init__(self, store: Store, interval: float = SNAPSHOT_INTERVAL_S) -> None:
        self._store = store
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobbie-history")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._store.record_history()
            except Exception:
                log.exception("queue history snapshot failed")  # retried next interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stop.wait()

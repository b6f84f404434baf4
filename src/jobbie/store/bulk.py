"""Bulk actions for every backend: which states each action applies to, and how a request is
carried out (at once in chunks, or in the background above a threshold with progress kept).

A backend supplies the I/O as a `BulkBackend`; this module owns the rules and the pacing: each
chunk is one short write transaction that re-checks the request, so fetches and acks
interleave with a large bulk operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from jobbie.models import BulkAccepted, BulkResponse
from jobbie.store.ids import new_id
from jobbie.store.params import BulkSpec
from jobbie.store.states import FINISHED, State, states_reaching

log = logging.getLogger("jobbie.store")

# The states each action applies to, from the lifecycle's transition table where the action
# is a state change: retry runs a finished job again; cancel takes any state that may become
# cancelled (an active job is asked to stop). Jobs in other states are skipped.
APPLIES_TO: dict[str, frozenset[State]] = {
    "retry": states_reaching(State.PENDING, FINISHED),
    "delete": frozenset(State),
    "cancel": states_reaching(State.CANCELLED),
    "move": frozenset({State.PENDING, State.DEAD, State.SCHEDULED, State.COMPLETED}),
    "requeue": frozenset({State.DEAD}),
    "change_priority": frozenset({State.PENDING, State.SCHEDULED}),
}
# Jobs per write transaction, and so about the longest a worker's fetch or ack waits behind
# one: ~10 ms on a 1M-job SQLite table.
CHUNK = 500
# Above this many matches a bulk request runs in the background and answers 202.
BACKGROUND_ABOVE = 10_000


class BulkBackend(Protocol):
    """The I/O a backend provides to carry out bulk requests."""

    async def count_matches(self, spec: BulkSpec) -> tuple[int, int]:
        """(jobs the request names now, ids it names that do not exist)."""
        ...

    async def matching_keys(self, spec: BulkSpec) -> list[int]:
        """Every job the request names now, as sortable keys, in key order."""
        ...

    async def apply_chunk(
        self, spec: BulkSpec, keys: Sequence[int], bulk_id: str | None
    ) -> tuple[int, int]:
        """In one transaction: re-check which of `keys` the request still names, act on them,
        add the progress to `bulk_id` when given; return (still named, changed)."""
        ...

    async def record_bulk_start(
        self, bulk_id: str, spec: BulkSpec, estimated: int, errors: int
    ) -> None:
        """Create the progress record of a background operation (status `running`)."""
        ...

    async def record_bulk_end(self, bulk_id: str, status: str) -> None:
        """Mark a background operation `completed` or `failed`."""
        ...


class BulkRunner:
    """Carries out bulk requests on a backend, keeping track of background operations."""

    def __init__(
        self, backend: BulkBackend, *, chunk: int = CHUNK, background_above: int = BACKGROUND_ABOVE
    ) -> None:
        self._backend = backend
        self.chunk = chunk
        self.background_above = background_above
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, spec: BulkSpec) -> BulkResponse | BulkAccepted:
        """Apply the request's action now, or start it in the background when large."""
        started = time.perf_counter()
        matched, unknown = await self._backend.count_matches(spec)
        if matched > self.background_above:
            bulk_id = new_id("bulk")
            await self._backend.record_bulk_start(bulk_id, spec, matched, unknown)
            task = asyncio.create_task(self._in_background(spec, bulk_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return BulkAccepted(
                bulk_operation_id=bulk_id,
                status="running",
                estimated_total=matched,
                progress_url=f"/api/v1/bulk/{bulk_id}",
            )
        affected, seen = await self._chunks(spec, None)
        return BulkResponse(
            affected=affected,
            skipped=seen - affected,
            errors=unknown,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _chunks(self, spec: BulkSpec, bulk_id: str | None) -> tuple[int, int]:
        """Act on the matches chunk by chunk; returns (changed, still named)."""
        keys = await self._backend.matching_keys(spec)
        affected = seen = 0
        for start in range(0, len(keys), self.chunk):
            count, changed = await self._backend.apply_chunk(
                spec, keys[start : start + self.chunk], bulk_id
            )
            affected += changed
            seen += count
        return affected, seen

    async def _in_background(self, spec: BulkSpec, bulk_id: str) -> None:
        status = "failed"
        try:
            await self._chunks(spec, bulk_id)
            status = "completed"
        except Exception:
            log.exception("bulk operation %s failed", bulk_id)
        finally:
            with contextlib.suppress(Exception):
                await self._backend.record_bulk_end(bulk_id, status)

    async def close(self) -> None:
        """Stop background operations (a restarted server marks them failed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

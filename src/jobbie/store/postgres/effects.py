"""Bookkeeping writes shared by every transition: events, queue totals, queue rows, locks.

Events and totals are collected on the `Tx` and written once, just before COMMIT
(`tx._flush`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from jobbie.store.postgres.tx import Tx
from jobbie.store.states import EventType


def record_event(
    tx: Tx, type_: EventType, job_id: str | None, queue: str | None, data: Any = None
) -> None:
    """Append one lifecycle event."""
    text = None if data is None else msgspec.json.encode(data).decode()
    tx.events.append((type_.value, job_id, queue, text, tx.now))


def record_events(
    tx: Tx, type_: EventType, jobs: Iterable[tuple[str, str]], data: str | None = None
) -> None:
    """Append one event of `type_` (with the same JSON `data`) for each (job_id, queue)."""
    tx.events.extend((type_.value, job_id, queue, data, tx.now) for job_id, queue in jobs)


def bump_totals(
    tx: Tx, queue: str, *, enqueued: int = 0, completed: int = 0, failed: int = 0, dead: int = 0
) -> None:
    """Add to a queue's running totals."""
    totals = tx.totals.setdefault(queue, [0, 0, 0, 0])
    totals[0] += enqueued
    totals[1] += completed
    totals[2] += failed
    totals[3] += dead


# A queue's configuration row, created on first use: (name, created_at).
QUEUE_ROW = "INSERT INTO queues (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"


async def ensure_queue(tx: Tx, name: str) -> None:
    """Create the queue's configuration row on first use (sent with the next statement)."""
    tx.defer(QUEUE_ROW, (name, tx.now))


async def release_unique_lock(tx: Tx, queue: str, unique_key: str | None, job_id: str) -> None:
    """Drop the unique lock, but only if this job still holds it."""
    if unique_key is not None:
        await tx.execute(
            "DELETE FROM unique_locks WHERE queue = %s AND unique_key = %s AND job_id = %s",
            (queue, unique_key, job_id),
        )


async def wake_if_limited(tx: Tx, queue: str) -> None:
    """A job left `active`: waiters on a concurrency-limited queue may now get a slot."""
    row = await tx.one("SELECT max_concurrency FROM queues WHERE name = %s", (queue,))
    if row is not None and row["max_concurrency"] is not None:
        tx.wake.add(queue)

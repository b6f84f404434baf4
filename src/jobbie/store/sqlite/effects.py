"""Bookkeeping writes shared by every transition: events, queue totals, queue rows, locks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType


def record_event(
    tx: Tx, type_: EventType, job_id: str | None, queue: str | None, data: Any = None
) -> None:
    """Append one lifecycle event (written with the rest of the group, before COMMIT)."""
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
    """Add to a queue's running totals (written once per queue and group, before COMMIT)."""
    totals = tx.totals.get(queue)
    if totals is None:
        tx.totals[queue] = [enqueued, completed, failed, dead]
    else:
        totals[0] += enqueued
        totals[1] += completed
        totals[2] += failed
        totals[3] += dead


def ensure_queue(tx: Tx, name: str) -> None:
    """Create the queue's configuration row on first use."""
    tx.execute("INSERT OR IGNORE INTO queues (name, created_at) VALUES (?, ?)", (name, tx.now))


def release_unique_lock(tx: Tx, queue: str, unique_key: str | None, job_id: str) -> None:
    """Drop the unique lock, but only if this job still holds it."""
    if unique_key is not None:
        tx.execute(
            "DELETE FROM unique_locks WHERE queue = ? AND unique_key = ? AND job_id = ?",
            (queue, unique_key, job_id),
        )


def wake_if_limited(tx: Tx, queue: str) -> None:
    """A job left `active`: waiters on a concurrency-limited queue may now get a slot."""
    row = tx.execute("SELECT max_concurrency FROM queues WHERE name = ?", (queue,)).fetchone()
    if row is not None and row[0] is not None:
        tx.wake.add(queue)

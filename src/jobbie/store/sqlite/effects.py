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
    """Append one lifecycle event."""
    text = None if data is None else msgspec.json.encode(data).decode()
    tx.execute(
        "INSERT INTO events (type, job_id, queue, data, at) VALUES (?, ?, ?, ?, ?)",
        (type_.value, job_id, queue, text, tx.now),
    )


def record_events(tx: Tx, type_: EventType, jobs: Iterable[tuple[str, str]]) -> None:
    """Append one event of `type_` for each (job_id, queue)."""
    tx.conn.executemany(
        "INSERT INTO events (type, job_id, queue, at) VALUES (?, ?, ?, ?)",
        [(type_.value, job_id, queue, tx.now) for job_id, queue in jobs],
    )


def bump_totals(
    tx: Tx, queue: str, *, enqueued: int = 0, completed: int = 0, failed: int = 0, dead: int = 0
) -> None:
    """Add to a queue's running totals (they never go down)."""
    tx.execute(
        "INSERT INTO queue_stats (queue, enqueued, completed, failed, dead) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued,"
        " completed = completed + excluded.completed, failed = failed + excluded.failed,"
        " dead = dead + excluded.dead",
        (queue, enqueued, completed, failed, dead),
    )


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

"""Row-level job insertion shared by enqueue, batch enqueue, batch callbacks and cron."""

from __future__ import annotations

from collections import Counter

from jobbie.store.ids import new_job_id
from jobbie.store.params import NewJob
from jobbie.store.sqlite.effects import bump_totals, record_events
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType, State

_INSERT = (
    "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
    " retry_base_delay_ms, retry_max_delay_ms, unique_key, unique_period_ms, batch_id, tags,"
    " created_at, scheduled_at, expire_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_jobs(tx: Tx, jobs: list[NewJob], *, batch_id: str | None) -> list[tuple[str, str]]:
    """Insert new jobs with their events, totals and unique locks; return (id, state) each."""
    now = tx.now
    rows = []
    created: list[tuple[str, str]] = []
    locks = []
    for job in jobs:
        job_id = new_job_id()
        scheduled_at = job.scheduled_at
        if scheduled_at is None and job.delay_ms:
            scheduled_at = now + job.delay_ms
        state = (
            State.SCHEDULED if scheduled_at is not None and scheduled_at > now else State.PENDING
        )
        expire_at = now + job.expire_after_ms if job.expire_after_ms is not None else None
        retry = job.retry
        rows.append(
            (
                job_id,
                job.queue,
                state.value,
                job.payload,
                job.priority,
                retry.max_retries,
                retry.backoff.value,
                retry.base_delay_ms,
                retry.max_delay_ms,
                job.unique_key,
                job.unique_period_ms,
                batch_id,
                job.tags,
                now,
                scheduled_at,
                expire_at,
            )
        )
        created.append((job_id, state.value))
        if job.unique_key is not None and job.unique_period_ms is not None:
            locks.append((job.queue, job.unique_key, job_id, now + job.unique_period_ms))
        if state is State.PENDING:
            tx.wake.add(job.queue)
    tx.conn.executemany(_INSERT, rows)
    # Counted here, once per queue and state, rather than by a per-row trigger.
    tx.conn.executemany(
        "INSERT INTO queue_counts (queue, state, n) VALUES (?, ?, ?)"
        " ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n",
        [(queue, state, n) for (queue, state), n in Counter((r[1], r[2]) for r in rows).items()],
    )
    if locks:
        tx.conn.executemany(
            "INSERT OR REPLACE INTO unique_locks (queue, unique_key, job_id, expires_at)"
            " VALUES (?, ?, ?, ?)",
            locks,
        )
    record_events(tx, EventType.ENQUEUED, ((row[0], row[1]) for row in rows))
    for queue, n in Counter(job.queue for job in jobs).items():
        bump_totals(tx, queue, enqueued=n)
    return created


def unique_holder(tx: Tx, queue: str, unique_key: str) -> tuple[str, str] | None:
    """(job_id, state) of the unfinished job holding the lock on (queue, unique_key)."""
    row = tx.execute(
        "SELECT j.id, j.state FROM unique_locks AS l JOIN jobs AS j ON j.id = l.job_id"
        " WHERE l.queue = ? AND l.unique_key = ? AND l.expires_at > ?"
        " AND j.state NOT IN ('completed', 'dead', 'cancelled')",
        (queue, unique_key, tx.now),
    ).fetchone()
    return None if row is None else (row[0], row[1])

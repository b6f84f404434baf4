"""Writing planned jobs (see `jobbie.store.inserts`): enqueue, batch enqueue, batch callbacks
and cron all insert through here."""

from __future__ import annotations

from collections import Counter

from jobbie.store.inserts import JOB_COLUMNS, job_row, plan_inserts
from jobbie.store.params import NewJob
from jobbie.store.sqlite.effects import bump_totals, record_events
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType, State

_INSERT = f"INSERT INTO jobs ({JOB_COLUMNS}, batch_id, created_at) VALUES ({', '.join('?' * 17)})"


def insert_jobs(tx: Tx, jobs: list[NewJob], *, batch_id: str | None) -> list[tuple[str, str]]:
    """Insert new jobs with their events, totals and unique locks; return (id, state) each."""
    now = tx.now
    planned = plan_inserts(jobs, now)
    rows = [(*job_row(p), batch_id, now) for p in planned]
    created = [(p.id, p.state.value) for p in planned]
    locks = [
        (p.job.queue, p.job.unique_key, p.id, p.lock_expires_at)
        for p in planned
        if p.lock_expires_at is not None
    ]
    tx.wake.update(p.job.queue for p in planned if p.state is State.PENDING)
    tx.conn.executemany(_INSERT, rows)
    # Counted here, once per queue and state, rather than by a per-row trigger.
    tx.conn.executemany(
        "INSERT INTO queue_counts (queue, state, n) VALUES (?, ?, ?)"
        " ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n",
        [
            (queue, state, n)
            for (queue, state), n in Counter((p.job.queue, p.state.value) for p in planned).items()
        ],
    )
    if locks:
        tx.conn.executemany(
            "INSERT OR REPLACE INTO unique_locks (queue, unique_key, job_id, expires_at)"
            " VALUES (?, ?, ?, ?)",
            locks,
        )
    record_events(tx, EventType.ENQUEUED, ((p.id, p.job.queue) for p in planned))
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

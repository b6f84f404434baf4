"""Writing planned jobs (see `jobbie.store.inserts`): enqueue, batch enqueue, batch callbacks
and cron all insert through here.

Unique jobs are decided by the `unique_locks` primary key, not by a read: a new job takes its
lock with `INSERT ... ON CONFLICT`, which waits for a concurrent transaction inserting the same
key and then sees its row, so two servers enqueueing one key at once make one job.
Queue counts are kept by the `jobs` statement triggers (one upsert per statement), so the
rows go in as one statement.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence

from jobbie.store.ids import new_job_id
from jobbie.store.inserts import JOB_COLUMNS, job_row, plan_inserts
from jobbie.store.params import NewJob
from jobbie.store.postgres.effects import bump_totals, record_events
from jobbie.store.postgres.tx import Tx
from jobbie.store.states import EventType, State

UniqueKey = tuple[str, str]  # (queue, unique_key)

_COLUMNS = f"INSERT INTO jobs ({JOB_COLUMNS}, batch_id, created_at)"
_INSERT = (
    f"{_COLUMNS} SELECT *, %s::text, %s::bigint FROM unnest(%s::text[], %s::text[], %s::text[],"
    " %s::text[], %s::int[], %s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],"
    " %s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[])"
)
# One job: its `job_row`, then batch_id and created_at (arrays cost more to send).
INSERT_ONE = f"{_COLUMNS} VALUES ({', '.join(['%s'] * 17)})"
_FINISHED = "('completed', 'dead', 'cancelled')"


async def insert_jobs(
    tx: Tx,
    jobs: Sequence[NewJob],
    *,
    batch_id: str | None,
    locked: Mapping[UniqueKey, str] | None = None,
) -> list[tuple[str, str]]:
    """Insert new jobs with their events, totals and unique locks; return (id, state) each.

    `locked` names the ids reserved by `take_unique_locks`: a job whose key is there gets that
    id (its lock is already written); any other job with a unique period takes its lock here,
    replacing whatever held it.
    """
    if not jobs:
        return []
    now = tx.now
    locked = locked or {}
    planned = []
    for p in plan_inserts(jobs, now):
        reserved = None if p.job.unique_key is None else locked.get((p.job.queue, p.job.unique_key))
        planned.append(p if reserved is None else dataclasses.replace(p, id=reserved))
    columns: list[list[object]] = [[] for _ in range(15)]
    for p in planned:
        for column, value in zip(columns, job_row(p), strict=True):
            column.append(value)
    # Nothing is read back (ids and states were decided here): the INSERT goes with the next
    # statement, or with the COMMIT, so a plain enqueue is one round trip.
    tx.defer(_INSERT, (batch_id, now, *columns))
    locks = [
        (p.job.queue, p.job.unique_key, p.id, p.lock_expires_at)
        for p in planned
        if p.lock_expires_at is not None
        and p.job.unique_key is not None
        and (p.job.queue, p.job.unique_key) not in locked
    ]
    if locks:
        await tx.many(
            "INSERT INTO unique_locks (queue, unique_key, job_id, expires_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (queue, unique_key) DO UPDATE"
            " SET job_id = excluded.job_id, expires_at = excluded.expires_at",
            sorted(locks),
        )
    tx.wake.update(p.job.queue for p in planned if p.state is State.PENDING)
    record_events(tx, EventType.ENQUEUED, ((p.id, p.job.queue) for p in planned))
    for queue, n in Counter(job.queue for job in jobs).items():
        bump_totals(tx, queue, enqueued=n)
    return [(p.id, p.state.value) for p in planned]


async def take_unique_locks(
    tx: Tx, jobs: Sequence[NewJob]
) -> tuple[dict[UniqueKey, tuple[str, str]], dict[UniqueKey, str]]:
    """For each unique key among `jobs` (the first job of a key decides its period): either
    the (id, state) of the unfinished job holding it, or the id reserved for the new job that
    now holds its lock. Returns (held, taken)."""
    first: dict[UniqueKey, NewJob] = {}
    for job in jobs:
        if job.unique_key is not None:
            first.setdefault((job.queue, job.unique_key), job)
    held: dict[UniqueKey, tuple[str, str]] = {}
    taken: dict[UniqueKey, str] = {}
    # In key order, so two batches sharing keys lock them in the same order.
    for key in sorted(first):
        period = first[key].unique_period_ms
        if period is None:  # no lock to take: only an existing holder counts
            holder = await unique_holder(tx, *key)
        else:
            job_id = new_job_id()
            holder = await _take_lock(tx, key, job_id, tx.now + period)
            if holder is None:
                taken[key] = job_id
        if holder is not None:
            held[key] = holder
    return held, taken


async def _take_lock(
    tx: Tx, key: UniqueKey, job_id: str, expires_at: int
) -> tuple[str, str] | None:
    """Take the lock on `key` for `job_id`, or return the live holder's (id, state)."""
    row = await tx.one(
        "INSERT INTO unique_locks (queue, unique_key, job_id, expires_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (queue, unique_key) DO UPDATE"
        " SET job_id = excluded.job_id, expires_at = excluded.expires_at"
        " WHERE unique_locks.expires_at <= %s RETURNING job_id",
        (*key, job_id, expires_at, tx.now),
    )
    if row is not None:
        return None
    # A live lock, now row-locked by this transaction. Its job may have ended without
    # releasing it (or been deleted): this statement's fresh snapshot says.
    holder = await unique_holder(tx, *key)
    if holder is None:
        await tx.execute(
            "UPDATE unique_locks SET job_id = %s, expires_at = %s"
            " WHERE queue = %s AND unique_key = %s",
            (job_id, expires_at, *key),
        )
    return holder


async def unique_holder(tx: Tx, queue: str, unique_key: str) -> tuple[str, str] | None:
    """(job_id, state) of the unfinished job holding the lock on (queue, unique_key)."""
    row = await tx.one(
        "SELECT j.id, j.state FROM unique_locks AS l JOIN jobs AS j ON j.id = l.job_id"
        " WHERE l.queue = %s AND l.unique_key = %s AND l.expires_at > %s"
        f" AND j.state NOT IN {_FINISHED}",
        (queue, unique_key, tx.now),
    )
    return None if row is None else (row["id"], row["state"])

"""Cron schedules: their rows, and firing the due ones.

The schedule row is the guard against firing twice, across any number of servers: the job for
a fire time is inserted in the transaction that moves `next_run` on from the value it read
(`... WHERE next_run = <read value>`). A second server (or a leader overlapping its successor)
that read the same fire time updates no row once the first commits, so it enqueues nothing.
Missed fire times (downtime) collapse into one run, because `next_run` moves past *now*.
"""

from __future__ import annotations

import msgspec

from jobbie.errors import Conflict, NotFound
from jobbie.store.cron import next_fire_ms
from jobbie.store.ids import new_id
from jobbie.store.params import NewJob, ScheduleSpec
from jobbie.store.postgres.effects import ensure_queue
from jobbie.store.postgres.inserts import insert_jobs
from jobbie.store.postgres.tx import Row, Tx
from jobbie.store.rules import DEFAULT_RETRY, RetryPolicy

_FIELDS = ("name", "queue", "cron", "timezone", "payload", "priority", "max_retries", "tags", "key")


def _definition(tx: Tx, spec: ScheduleSpec) -> dict[str, object]:
    """The columns a create or update writes; the next run is computed from now."""
    values: dict[str, object] = {name: getattr(spec, name) for name in _FIELDS}
    values["paused"] = spec.paused
    values["next_run"] = next_fire_ms(spec.cron, spec.timezone, tx.now)
    values["updated_at"] = tx.now
    return values


async def create(tx: Tx, spec: ScheduleSpec) -> str:
    schedule_id = new_id("sched")
    await _check_name(tx, spec.name, schedule_id)
    values = {"id": schedule_id, "created_at": tx.now, **_definition(tx, spec)}
    # ON CONFLICT: another server may have created the name since the check above.
    cur = await tx.execute(
        f"INSERT INTO schedules ({', '.join(values)})"
        f" VALUES ({', '.join(['%s'] * len(values))}) ON CONFLICT (name) DO NOTHING",
        tuple(values.values()),
    )
    if not cur.rowcount:
        raise Conflict(f"a schedule named {spec.name!r} exists already")
    return schedule_id


async def update(tx: Tx, schedule_id: str, spec: ScheduleSpec) -> None:
    await _exists(tx, schedule_id)
    await _check_name(tx, spec.name, schedule_id)
    values = _definition(tx, spec)
    await tx.execute(
        f"UPDATE schedules SET {', '.join(f'{c} = %s' for c in values)} WHERE id = %s",
        (*values.values(), schedule_id),
    )


async def delete(tx: Tx, schedule_id: str) -> None:
    await _exists(tx, schedule_id)
    await tx.execute("DELETE FROM schedules WHERE id = %s", (schedule_id,))


async def fire_due(tx: Tx, limit: int) -> int:
    """Enqueue one job for each schedule whose next fire time has come."""
    rows = await tx.all(
        "SELECT * FROM schedules WHERE NOT paused AND next_run <= %s ORDER BY next_run LIMIT %s",
        (tx.now, limit),
    )
    fired = 0
    for row in rows:
        # Claiming the fire time is the once-per-fire-time guard: only the transaction that
        # moves `next_run` on from the time it read enqueues the job (a concurrent one waits
        # for the row, then finds `next_run` changed and updates nothing).
        cur = await tx.execute(
            "UPDATE schedules SET last_run = %s, next_run = %s WHERE id = %s AND next_run = %s",
            (
                row["next_run"],
                next_fire_ms(row["cron"], row["timezone"], tx.now),
                row["id"],
                row["next_run"],
            ),
        )
        if not cur.rowcount:
            continue
        fired += 1
        await ensure_queue(tx, row["queue"])
        await insert_jobs(tx, [_job(row)], batch_id=None)
    return fired


def _job(row: Row) -> NewJob:
    """The job a schedule's row enqueues, tagged with the schedule's id."""
    tags = msgspec.json.decode(row["tags"])
    tags["schedule_id"] = row["id"]
    return NewJob(
        queue=row["queue"],
        payload=row["payload"],
        priority=row["priority"],
        retry=RetryPolicy(
            max_retries=row["max_retries"],
            backoff=DEFAULT_RETRY.backoff,
            base_delay_ms=DEFAULT_RETRY.base_delay_ms,
            max_delay_ms=DEFAULT_RETRY.max_delay_ms,
        ),
        tags=msgspec.json.encode(tags).decode(),
        key=row["key"],
    )


async def _exists(tx: Tx, schedule_id: str) -> None:
    if await tx.one("SELECT 1 FROM schedules WHERE id = %s", (schedule_id,)) is None:
        raise NotFound(f"schedule {schedule_id} not found")


async def _check_name(tx: Tx, name: str, schedule_id: str) -> None:
    row = await tx.one("SELECT id FROM schedules WHERE name = %s", (name,))
    if row is not None and row["id"] != schedule_id:
        raise Conflict(f"a schedule named {name!r} exists already")

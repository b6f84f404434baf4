"""Cron schedules: their rows, and firing the due ones.

The schedule row is the guard against firing twice: the job for a fire time is inserted and
`next_run` advanced in the same transaction, so a restart can never repeat a fire time.
Missed fire times (downtime) collapse into one run, because `next_run` moves past *now*.
"""

from __future__ import annotations

import msgspec

from jobbie.errors import Conflict, NotFound
from jobbie.store.cron import next_fire_ms
from jobbie.store.ids import new_id
from jobbie.store.params import NewJob, ScheduleSpec
from jobbie.store.rules import DEFAULT_RETRY, RetryPolicy
from jobbie.store.sqlite.effects import ensure_queue
from jobbie.store.sqlite.inserts import insert_jobs
from jobbie.store.sqlite.writer import Tx

_FIELDS = ("name", "queue", "cron", "timezone", "payload", "priority", "max_retries", "tags", "key")


def _definition(tx: Tx, spec: ScheduleSpec) -> dict[str, object]:
    """The columns a create or update writes; the next run is computed from now."""
    values: dict[str, object] = {name: getattr(spec, name) for name in _FIELDS}
    values["paused"] = int(spec.paused)
    values["next_run"] = next_fire_ms(spec.cron, spec.timezone, tx.now)
    values["updated_at"] = tx.now
    return values


def create(tx: Tx, spec: ScheduleSpec) -> str:
    schedule_id = new_id("sched")
    _check_name(tx, spec.name, schedule_id)
    values = {"id": schedule_id, "created_at": tx.now, **_definition(tx, spec)}
    tx.execute(
        f"INSERT INTO schedules ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    return schedule_id


def update(tx: Tx, schedule_id: str, spec: ScheduleSpec) -> None:
    _exists(tx, schedule_id)
    _check_name(tx, spec.name, schedule_id)
    values = _definition(tx, spec)
    tx.execute(
        f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
        (*values.values(), schedule_id),
    )


def delete(tx: Tx, schedule_id: str) -> None:
    _exists(tx, schedule_id)
    tx.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))


def fire_due(tx: Tx, limit: int) -> int:
    """Enqueue one job for each schedule whose next fire time has come."""
    rows = tx.execute(
        "SELECT * FROM schedules WHERE paused = 0 AND next_run <= ? ORDER BY next_run LIMIT ?",
        (tx.now, limit),
    ).fetchall()
    fired = 0
    for row in rows:
        # Claiming the fire time is the once-per-fire-time guard: only the writer that moves
        # `next_run` on from the time it read enqueues the job.
        if not tx.execute(
            "UPDATE schedules SET last_run = ?, next_run = ? WHERE id = ? AND next_run = ?",
            (
                row["next_run"],
                next_fire_ms(row["cron"], row["timezone"], tx.now),
                row["id"],
                row["next_run"],
            ),
        ).rowcount:
            continue
        fired += 1
        tags = msgspec.json.decode(row["tags"])
        tags["schedule_id"] = row["id"]
        ensure_queue(tx, row["queue"])
        insert_jobs(
            tx,
            [
                NewJob(
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
            ],
            batch_id=None,
        )
    return fired


def _exists(tx: Tx, schedule_id: str) -> None:
    if tx.execute("SELECT 1 FROM schedules WHERE id = ?", (schedule_id,)).fetchone() is None:
        raise NotFound(f"schedule {schedule_id} not found")


def _check_name(tx: Tx, name: str, schedule_id: str) -> None:
    row = tx.execute("SELECT id FROM schedules WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != schedule_id:
        raise Conflict(f"a schedule named {name!r} exists already")

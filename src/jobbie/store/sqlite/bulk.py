"""Set-based job actions: retry, requeue, cancel, move, delete, change priority.

Each function acts on one chunk of jobs named by `seq` (passed as one JSON array parameter),
with UPDATE/DELETE statements plus matching event rows and counter changes — no per-job loop —
so a large bulk operation is a series of short writer transactions that fetch and ack
interleave with. Jobs in states an action does not apply to are left alone; callers count them
as skipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from jobbie.store.bulk import APPLIES_TO
from jobbie.store.params import BulkSpec
from jobbie.store.sqlite import batches
from jobbie.store.sqlite.effects import ensure_queue, record_event, record_events
from jobbie.store.sqlite.search_sql import where_clause
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType, State

# A chunk is named by seq. Conditions on other columns are written `+state` so that SQLite
# looks each job up by its key instead of scanning an index of every job in those states.
_IN_CHUNK = "seq IN (SELECT value FROM json_each(?))"


def _states(states: frozenset[State]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(states, key=lambda s: s.value))


def _chunk(seqs: Sequence[int]) -> str:
    return msgspec.json.encode(list(seqs)).decode()


def retry(tx: Tx, seqs: Sequence[int]) -> int:
    """Finished jobs run again from scratch: attempt 0; result, progress, checkpoint cleared.
    An expiry is dropped too, or an expired job would die again at once."""
    rows = tx.execute(
        "UPDATE jobs SET state = 'pending', attempt = 0, extra_attempts = 0, result = NULL,"
        " progress = NULL, checkpoint = NULL, completed_at = NULL, started_at = NULL,"
        " lease_expires_at = NULL, cancel_requested = 0, scheduled_at = NULL, expire_at = NULL"
        f" WHERE {_IN_CHUNK} AND +state IN ({_states(APPLIES_TO['retry'])}) RETURNING id, queue",
        (_chunk(seqs),),
    ).fetchall()
    return _requeued(tx, rows, EventType.ENQUEUED, '{"reason":"retry"}')


def requeue(tx: Tx, seqs: Sequence[int]) -> int:
    """Dead jobs get exactly one more attempt, keeping attempt, errors and checkpoint (their
    configured max_retries stays as it is; the grant is `extra_attempts`)."""
    rows = tx.execute(
        "UPDATE jobs SET state = 'pending', extra_attempts = attempt - max_retries,"
        " completed_at = NULL, lease_expires_at = NULL, cancel_requested = 0,"
        " scheduled_at = NULL, expire_at = NULL"
        f" WHERE {_IN_CHUNK} AND +state = 'dead' RETURNING id, queue",
        (_chunk(seqs),),
    ).fetchall()
    return _requeued(tx, rows, EventType.ENQUEUED, '{"reason":"requeue"}')


def _requeued(tx: Tx, rows: list[tuple[str, str]], event: EventType, data: str) -> int:
    record_events(tx, event, rows, data)
    tx.wake.update(queue for _, queue in rows)
    return len(rows)


def cancel(tx: Tx, seqs: Sequence[int]) -> int:
    """Waiting jobs are cancelled at once; active ones are asked to stop."""
    chunk = _chunk(seqs)
    asked = tx.execute(
        f"UPDATE jobs SET cancel_requested = 1 WHERE {_IN_CHUNK} AND +state = 'active'", (chunk,)
    ).rowcount
    waiting = f"{_IN_CHUNK} AND +state IN ('pending', 'scheduled', 'retrying')"
    _finish_bookkeeping(tx, waiting, chunk)
    rows = tx.execute(
        f"UPDATE jobs SET state = 'cancelled', completed_at = ? WHERE {waiting}"
        " RETURNING id, queue",
        (tx.now, chunk),
    ).fetchall()
    record_events(tx, EventType.CANCELLED, rows)
    return len(rows) + asked


def move(tx: Tx, seqs: Sequence[int], queue: str, states: frozenset[State]) -> int:
    """Move jobs to another queue (their unique locks stay where they are)."""
    ensure_queue(tx, queue)
    where = f"{_IN_CHUNK} AND +state IN ({_states(states)}) AND +queue != ?"
    chunk = _chunk(seqs)
    # The event names the queue the job left, so a stream watching that queue sees it go.
    moving = tx.execute(
        f"SELECT id, queue, state FROM jobs WHERE {where}", (chunk, queue)
    ).fetchall()
    tx.execute(f"UPDATE jobs SET queue = ? WHERE {where}", (queue, chunk, queue))
    for job_id, source, _ in moving:
        record_event(tx, EventType.MOVED, job_id, source, {"from": source, "to": queue})
    if any(state == "pending" for _, _, state in moving):
        tx.wake.add(queue)
    return len(moving)


def change_priority(tx: Tx, seqs: Sequence[int], priority: int) -> int:
    return tx.execute(
        f"UPDATE jobs SET priority = ? WHERE {_IN_CHUNK}"
        f" AND +state IN ({_states(APPLIES_TO['change_priority'])})",
        (priority, _chunk(seqs)),
    ).rowcount


def delete(tx: Tx, seqs: Sequence[int]) -> int:
    """Delete jobs with their errors; locks released, batch jobs counted as failed."""
    chunk = _chunk(seqs)
    _finish_bookkeeping(tx, _IN_CHUNK, chunk)
    rows = tx.execute(
        f"DELETE FROM jobs WHERE {_IN_CHUNK} RETURNING id, queue", (chunk,)
    ).fetchall()
    record_events(tx, EventType.DELETED, rows)
    return len(rows)


def _finish_bookkeeping(tx: Tx, where: str, chunk: str) -> None:
    """For jobs about to be cancelled or deleted: release their unique locks and count each
    unfinished batch job as failed (firing callbacks of batches this completes)."""
    # By the locks' key, and only those the jobs still hold: no scan of every lock.
    tx.execute(
        "DELETE FROM unique_locks WHERE (queue, unique_key, job_id) IN"
        f" (SELECT queue, unique_key, id FROM jobs WHERE {where} AND +unique_key IS NOT NULL)",
        (chunk,),
    )
    counts = tx.execute(
        f"SELECT batch_id, count(*) FROM jobs WHERE {where} AND +batch_id IS NOT NULL"
        " AND batch_counted = 0 GROUP BY batch_id",
        (chunk,),
    ).fetchall()
    if not counts:
        return
    tx.execute(
        f"UPDATE jobs SET batch_counted = 1 WHERE {where} AND +batch_id IS NOT NULL", (chunk,)
    )
    for batch_id, n in counts:
        batches.count_failures(tx, batch_id, n)


def apply(tx: Tx, spec: BulkSpec, seqs: Sequence[int]) -> int:
    """Run the spec's action on one chunk; return how many jobs it changed."""
    if not seqs:
        return 0
    if spec.action == "retry":
        return retry(tx, seqs)
    if spec.action == "requeue":
        return requeue(tx, seqs)
    if spec.action == "cancel":
        return cancel(tx, seqs)
    if spec.action == "delete":
        return delete(tx, seqs)
    if spec.action == "move":
        assert spec.move_to_queue is not None
        return move(tx, seqs, spec.move_to_queue, APPLIES_TO["move"])
    assert spec.action == "change_priority" and spec.priority is not None
    return change_priority(tx, seqs, spec.priority)


def matching_seqs(conn: sqlite3.Connection, spec: BulkSpec) -> list[int]:
    """Every job the request names now, in `seq` order (read once, on the read pool: walking
    the matches chunk by chunk in `seq` order would sort them all again for every chunk)."""
    sql, params = match_clause(spec)
    return sorted(r[0] for r in conn.execute(f"SELECT seq FROM jobs WHERE {sql}", params))


def still_matching(tx: Tx, spec: BulkSpec, seqs: Sequence[int]) -> list[int]:
    """The jobs of a chunk that the request still names (others changed meanwhile)."""
    sql, params = match_clause(spec)
    return [
        r[0]
        for r in tx.execute(
            # CROSS JOIN keeps the chunk as the outer loop: key lookups, whatever the filter.
            f"SELECT jobs.seq FROM json_each(?) AS chunk CROSS JOIN jobs"
            f" ON jobs.seq = chunk.value WHERE {sql} ORDER BY jobs.seq",
            (_chunk(seqs), *params),
        )
    ]


def match_clause(spec: BulkSpec) -> tuple[str, list[object]]:
    """SQL (over `jobs`) selecting the jobs a bulk request names."""
    if spec.job_ids is not None:
        return "jobs.id IN (SELECT value FROM json_each(?))", [
            msgspec.json.encode(spec.job_ids).decode()
        ]
    assert spec.filter is not None
    return where_clause(spec.filter)


def record_start(tx: Tx, bulk_id: str, spec: BulkSpec, estimated: int, errors: int) -> None:
    request = {"action": spec.action, "job_ids": spec.job_ids is not None}
    tx.execute(
        "INSERT INTO bulk_operations (id, action, status, estimated_total, errors, request,"
        " created_at) VALUES (?, ?, 'running', ?, ?, ?, ?)",
        (bulk_id, spec.action, estimated, errors, msgspec.json.encode(request).decode(), tx.now),
    )


def record_progress(tx: Tx, bulk_id: str, affected: int, skipped: int) -> None:
    tx.execute(
        "UPDATE bulk_operations SET affected = affected + ?, skipped = skipped + ? WHERE id = ?",
        (affected, skipped, bulk_id),
    )


def record_end(tx: Tx, bulk_id: str, status: str) -> None:
    tx.execute(
        "UPDATE bulk_operations SET status = ?, finished_at = ? WHERE id = ?",
        (status, tx.now, bulk_id),
    )


def record_interrupted(tx: Tx) -> int:
    return tx.execute(
        "UPDATE bulk_operations SET status = 'failed', finished_at = ? WHERE status = 'running'",
        (tx.now,),
    ).rowcount

"""Set-based job actions: retry, requeue, cancel, move, delete, change priority.

Each function acts on one chunk of jobs named by `seq` (one bigint[] parameter), with
UPDATE/DELETE statements plus matching events and counter changes, no per-job loop, so a large
bulk operation is a series of short transactions. Jobs in states an action does not apply to
are left alone; callers count them as skipped.

Other servers write meanwhile: every UPDATE is guarded by the states it applies to (READ
COMMITTED re-checks the guard on a row another transaction changed first), and actions with
bookkeeping (cancel, delete, move) lock their rows first, so that the jobs whose locks and
batches they settle are exactly the jobs they change. A claim skips locked rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from jobbie.store.bulk import APPLIES_TO
from jobbie.store.params import BulkSpec
from jobbie.store.postgres import batches
from jobbie.store.postgres.effects import ensure_queue, record_event, record_events
from jobbie.store.postgres.search_sql import clean_text, where_clause
from jobbie.store.postgres.tx import Tx
from jobbie.store.states import WAITING, EventType, State

_IN_CHUNK = "seq = ANY(%s::bigint[])"


def _states(states: frozenset[State]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(states, key=lambda s: s.value))


async def _lock(tx: Tx, seqs: Sequence[int], states: frozenset[State] | None = None) -> list[int]:
    """Lock the chunk's jobs (in the given states), in seq order; their seqs."""
    guard = "" if states is None else f" AND state IN ({_states(states)})"
    rows = await tx.all(
        f"SELECT seq FROM jobs WHERE {_IN_CHUNK}{guard} ORDER BY seq FOR UPDATE", (list(seqs),)
    )
    return [r["seq"] for r in rows]


async def retry(tx: Tx, seqs: Sequence[int]) -> int:
    """Finished jobs run again from scratch: attempt 0; result, progress, checkpoint cleared.
    An expiry is dropped too, or an expired job would die again at once."""
    rows = await tx.all(
        "UPDATE jobs SET state = 'pending', attempt = 0, extra_attempts = 0, result = NULL,"
        " progress = NULL, checkpoint = NULL, completed_at = NULL, started_at = NULL,"
        " lease_expires_at = NULL, cancel_requested = false, scheduled_at = NULL,"
        f" expire_at = NULL WHERE {_IN_CHUNK} AND state IN ({_states(APPLIES_TO['retry'])})"
        " RETURNING id, queue",
        (list(seqs),),
    )
    return _requeued(tx, rows, '{"reason":"retry"}')


async def requeue(tx: Tx, seqs: Sequence[int]) -> int:
    """Dead jobs get exactly one more attempt, keeping attempt, errors and checkpoint (their
    configured max_retries stays as it is; the grant is `extra_attempts`)."""
    rows = await tx.all(
        "UPDATE jobs SET state = 'pending', extra_attempts = attempt - max_retries,"
        " completed_at = NULL, lease_expires_at = NULL, cancel_requested = false,"
        f" scheduled_at = NULL, expire_at = NULL WHERE {_IN_CHUNK} AND state = 'dead'"
        " RETURNING id, queue",
        (list(seqs),),
    )
    return _requeued(tx, rows, '{"reason":"requeue"}')


def _requeued(tx: Tx, rows: list[dict[str, Any]], data: str) -> int:
    jobs = [(r["id"], r["queue"]) for r in rows]
    record_events(tx, EventType.ENQUEUED, jobs, data)
    tx.wake.update(queue for _, queue in jobs)
    return len(jobs)


async def cancel(tx: Tx, seqs: Sequence[int]) -> int:
    """Waiting jobs are cancelled at once; active ones are asked to stop."""
    asked = await tx.execute(
        f"UPDATE jobs SET cancel_requested = true WHERE {_IN_CHUNK} AND state = 'active'",
        (list(seqs),),
    )
    waiting = await _lock(tx, seqs, WAITING)
    if not waiting:
        return int(asked.rowcount)
    await _finish_bookkeeping(tx, waiting)
    rows = await tx.all(
        f"UPDATE jobs SET state = 'cancelled', completed_at = %s WHERE {_IN_CHUNK}"
        " RETURNING id, queue",
        (tx.now, waiting),
    )
    record_events(tx, EventType.CANCELLED, [(r["id"], r["queue"]) for r in rows])
    return len(rows) + int(asked.rowcount)


async def move(tx: Tx, seqs: Sequence[int], queue: str, states: frozenset[State]) -> int:
    """Move jobs to another queue (their unique locks stay where they are)."""
    await ensure_queue(tx, queue)
    rows = await tx.all(
        "WITH moving AS (SELECT seq, queue FROM jobs"
        f" WHERE {_IN_CHUNK} AND state IN ({_states(states)}) AND queue <> %s"
        " ORDER BY seq FOR UPDATE)"
        " UPDATE jobs SET queue = %s FROM moving WHERE jobs.seq = moving.seq"
        " RETURNING jobs.id, moving.queue AS source, jobs.state",
        (list(seqs), queue, queue),
    )
    # The event names the queue the job left, so a stream watching that queue sees it go.
    for row in rows:
        source = row["source"]
        record_event(tx, EventType.MOVED, row["id"], source, {"from": source, "to": queue})
    if any(row["state"] == State.PENDING.value for row in rows):
        tx.wake.add(queue)
    return len(rows)


async def change_priority(tx: Tx, seqs: Sequence[int], priority: int) -> int:
    cur = await tx.execute(
        f"UPDATE jobs SET priority = %s WHERE {_IN_CHUNK}"
        f" AND state IN ({_states(APPLIES_TO['change_priority'])})",
        (priority, list(seqs)),
    )
    return int(cur.rowcount)


async def delete(tx: Tx, seqs: Sequence[int]) -> int:
    """Delete jobs with their errors; locks released, batch jobs counted as failed."""
    locked = await _lock(tx, seqs)
    if not locked:
        return 0
    await _finish_bookkeeping(tx, locked)
    rows = await tx.all(f"DELETE FROM jobs WHERE {_IN_CHUNK} RETURNING id, queue", (locked,))
    record_events(tx, EventType.DELETED, [(r["id"], r["queue"]) for r in rows])
    return len(rows)


async def _finish_bookkeeping(tx: Tx, locked: list[int]) -> None:
    """For locked jobs about to be cancelled or deleted: release their unique locks and count
    each unfinished batch job as failed (firing callbacks of batches this completes)."""
    # By the locks' key, and only those the jobs still hold.
    await tx.execute(
        "DELETE FROM unique_locks WHERE (queue, unique_key, job_id) IN"
        f" (SELECT queue, unique_key, id FROM jobs WHERE {_IN_CHUNK} AND unique_key IS NOT NULL)",
        (locked,),
    )
    counts = await tx.all(
        "WITH counted AS (UPDATE jobs SET batch_counted = true"
        f" WHERE {_IN_CHUNK} AND batch_id IS NOT NULL AND NOT batch_counted RETURNING batch_id)"
        " SELECT batch_id, count(*) AS n FROM counted GROUP BY batch_id ORDER BY batch_id",
        (locked,),
    )
    for row in counts:  # in id order: batch rows are locked in one order by everyone
        await batches.count_failures(tx, row["batch_id"], row["n"])


async def apply(tx: Tx, spec: BulkSpec, seqs: Sequence[int]) -> int:
    """Run the spec's action on one chunk; return how many jobs it changed."""
    if not seqs:
        return 0
    if spec.action == "retry":
        return await retry(tx, seqs)
    if spec.action == "requeue":
        return await requeue(tx, seqs)
    if spec.action == "cancel":
        return await cancel(tx, seqs)
    if spec.action == "delete":
        return await delete(tx, seqs)
    if spec.action == "move":
        assert spec.move_to_queue is not None
        return await move(tx, seqs, spec.move_to_queue, APPLIES_TO["move"])
    assert spec.action == "change_priority" and spec.priority is not None
    return await change_priority(tx, seqs, spec.priority)


async def matching_seqs(tx: Tx, spec: BulkSpec) -> list[int]:
    """Every job the request names now, in `seq` order (read once)."""
    sql, params = match_clause(spec)
    rows = await tx.all(f"SELECT seq FROM jobs WHERE {sql} ORDER BY seq", params)
    return [r["seq"] for r in rows]


async def still_matching(tx: Tx, spec: BulkSpec, seqs: Sequence[int]) -> list[int]:
    """The jobs of a chunk that the request still names (others changed meanwhile)."""
    sql, params = match_clause(spec)
    rows = await tx.all(
        f"SELECT seq FROM jobs WHERE {_IN_CHUNK} AND {sql} ORDER BY seq", (list(seqs), *params)
    )
    return [r["seq"] for r in rows]


def match_clause(spec: BulkSpec) -> tuple[str, list[object]]:
    """SQL (over `jobs`) selecting the jobs a bulk request names."""
    if spec.job_ids is not None:
        return "jobs.id = ANY(%s::text[])", [job_id_params(spec.job_ids)]
    assert spec.filter is not None
    return where_clause(spec.filter)


def job_id_params(job_ids: Sequence[str]) -> list[str]:
    """Ids as a parameter: one holding U+0000 (which a parameter cannot) names no job."""
    return [clean_text(job_id) for job_id in job_ids]


async def record_start(
    tx: Tx, bulk_id: str, spec: BulkSpec, estimated: int, errors: int, node_id: str
) -> None:
    """A background operation begins, owned by `node_id` (the server running it)."""
    request = {"action": spec.action, "job_ids": spec.job_ids is not None}
    await tx.execute(
        "INSERT INTO bulk_operations (id, action, status, estimated_total, errors, request,"
        " created_at, node_id) VALUES (%s, %s, 'running', %s, %s, %s, %s, %s)",
        (
            bulk_id,
            spec.action,
            estimated,
            errors,
            msgspec.json.encode(request).decode(),
            tx.now,
            node_id,
        ),
    )


async def record_progress(tx: Tx, bulk_id: str, affected: int, skipped: int) -> None:
    await tx.execute(
        "UPDATE bulk_operations SET affected = affected + %s, skipped = skipped + %s WHERE id = %s",
        (affected, skipped, bulk_id),
    )


async def record_end(tx: Tx, bulk_id: str, status: str) -> None:
    await tx.execute(
        "UPDATE bulk_operations SET status = %s, finished_at = %s WHERE id = %s",
        (status, tx.now, bulk_id),
    )


async def record_interrupted(tx: Tx, node_id: str) -> int:
    """Fail this node's operations that a restart cut short (other nodes' keep running)."""
    cur = await tx.execute(
        "UPDATE bulk_operations SET status = 'failed', finished_at = %s"
        " WHERE status = 'running' AND node_id = %s",
        (tx.now, node_id),
    )
    return int(cur.rowcount)

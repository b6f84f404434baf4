"""The web console's data: failures grouped by error signature, the audit log, and the
per-minute queue history."""

from __future__ import annotations

from jobbie.models import AuditEntry, AuditList, FailureGroup
from jobbie.store.console import AUDIT_PRUNE_BATCH, AuditRecord, fold_failure_cells
from jobbie.store.history import KEEP_MS, Snapshot, minute_of
from jobbie.store.postgres.tx import Tx
from jobbie.timeutil import rfc3339


async def failure_groups(tx: Tx, limit: int) -> list[FailureGroup]:
    """Dead and retrying jobs by signature, most frequent first. The counts come from the
    trigger-maintained `failure_counts` (slots summed per signature, state and queue; a cell
    summing to 0 has no job), so this never aggregates the failed jobs; each cell's first and
    last failure is one index seek into jobs_failures (state, error_signature, queue,
    failed_at) for min(), one for max()."""
    rows = await tx.all(
        "WITH cells AS (SELECT signature, state, queue, sum(n) AS n FROM failure_counts"
        " GROUP BY signature, state, queue HAVING sum(n) > 0),"
        " top AS (SELECT signature, sum(n)::bigint AS total FROM cells GROUP BY signature"
        '  ORDER BY sum(n) DESC, signature COLLATE "C" LIMIT %s)'
        " SELECT t.signature, t.total, c.queue,"
        " (SELECT min(failed_at) FROM jobs AS j WHERE j.state = c.state"
        "  AND j.error_signature = c.signature AND j.queue = c.queue) AS first,"
        " (SELECT max(failed_at) FROM jobs AS j WHERE j.state = c.state"
        "  AND j.error_signature = c.signature AND j.queue = c.queue) AS last"
        " FROM top AS t JOIN cells AS c ON c.signature = t.signature"
        ' ORDER BY t.total DESC, t.signature COLLATE "C"',
        (limit,),
    )
    return fold_failure_cells(
        (r["signature"], r["total"], r["queue"], r["first"], r["last"]) for r in rows
    )


async def record_audit(tx: Tx, record: AuditRecord, retention_ms: int) -> None:
    await tx.execute(
        "INSERT INTO audit_log (at, actor, action, target, affected, source)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (tx.now, record.actor, record.action, record.target, record.affected, record.source),
    )
    await tx.execute(
        "DELETE FROM audit_log WHERE id IN"
        " (SELECT id FROM audit_log WHERE at < %s ORDER BY at LIMIT %s)",
        (tx.now - retention_ms, AUDIT_PRUNE_BATCH),
    )


async def list_audit(tx: Tx, limit: int, before_id: int | None) -> AuditList:
    rows = await tx.all(
        "SELECT id, at, actor, action, target, affected, source FROM audit_log"
        " WHERE id < %s ORDER BY id DESC LIMIT %s",
        (before_id if before_id is not None else 2**63 - 1, limit + 1),
    )
    entries = [
        AuditEntry(
            id=r["id"],
            at=rfc3339(r["at"]) or "",
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            affected=r["affected"],
            source=r["source"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return AuditList(entries=entries, next_before=entries[-1].id if more and entries else None)


async def record_history(tx: Tx) -> None:
    """Snapshot every queue for the current minute; drop snapshots past the history's age.
    Every server may snapshot the same minute: the last write wins, all alike."""
    await tx.execute(
        "INSERT INTO queue_history (queue, minute, completed, failed, depth)"
        " SELECT q.name, %s, COALESCE(s.completed, 0), COALESCE(s.failed, 0),"
        " (SELECT COALESCE(sum(n), 0) FROM queue_counts AS c WHERE c.queue = q.name"
        "  AND c.state IN ('pending', 'scheduled', 'retrying'))"
        " FROM queues AS q LEFT JOIN (SELECT queue, sum(completed) AS completed,"
        "  sum(failed) AS failed FROM queue_stats GROUP BY queue) AS s ON s.queue = q.name"
        " ORDER BY q.name"
        " ON CONFLICT (minute, queue) DO UPDATE SET completed = excluded.completed,"
        " failed = excluded.failed, depth = excluded.depth",
        (minute_of(tx.now),),
    )
    await tx.execute("DELETE FROM queue_history WHERE minute < %s", (tx.now - KEEP_MS,))


async def read_history(tx: Tx, queue: str | None, since: int) -> list[Snapshot]:
    """Snapshots from `since` on (plus the one before, for the first minute's rate), summed
    over every queue unless one is named. Keyed on (minute, queue): a range read."""
    only = " AND queue = %s" if queue else ""
    first = await tx.one(
        f"SELECT max(minute) AS minute FROM queue_history WHERE minute < %s{only}",
        (since, queue) if queue else (since,),
    )
    start = first["minute"] if first and first["minute"] is not None else since
    rows = await tx.all(
        "SELECT minute, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,"
        f" sum(depth)::bigint AS depth FROM queue_history WHERE minute >= %s{only}"
        " GROUP BY minute ORDER BY minute",
        (start, queue) if queue else (start,),
    )
    return [Snapshot(r["minute"], r["completed"], r["failed"], r["depth"]) for r in rows]

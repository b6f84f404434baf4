"""The web console's data: failures grouped by error signature, and the audit log."""

from __future__ import annotations

import sqlite3

from jobbie.models import AuditEntry, AuditList, FailureGroup
from jobbie.store.console import AUDIT_PRUNE_BATCH, AuditRecord, fold_failure_cells
from jobbie.store.history import KEEP_MS, Snapshot, minute_of
from jobbie.store.sqlite.writer import Tx
from jobbie.timeutil import rfc3339


def failure_groups(conn: sqlite3.Connection, limit: int) -> list[FailureGroup]:
    """Dead and retrying jobs by signature, most frequent first. The counts come from the
    trigger-maintained `failure_counts` (one row per signature, state and queue), so this never
    aggregates the failed jobs; each row's first and last failure is one index seek into
    jobs_failures (state, error_signature, queue, failed_at) for min(), one for max()."""
    rows = conn.execute(
        "WITH top AS (SELECT signature, sum(n) AS total FROM failure_counts"
        " GROUP BY signature ORDER BY sum(n) DESC, signature LIMIT ?)"
        " SELECT t.signature, t.total, c.queue,"
        " (SELECT min(failed_at) FROM jobs AS j WHERE j.state = c.state"
        "  AND j.error_signature = c.signature AND j.queue = c.queue),"
        " (SELECT max(failed_at) FROM jobs AS j WHERE j.state = c.state"
        "  AND j.error_signature = c.signature AND j.queue = c.queue)"
        " FROM top AS t JOIN failure_counts AS c ON c.signature = t.signature"
        " ORDER BY t.total DESC, t.signature",
        (limit,),
    ).fetchall()
    return fold_failure_cells(rows)


def record_audit(tx: Tx, record: AuditRecord, retention_ms: int) -> None:
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target, affected, source)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (tx.now, record.actor, record.action, record.target, record.affected, record.source),
    )
    tx.execute(
        "DELETE FROM audit_log WHERE id IN"
        " (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
        (tx.now - retention_ms, AUDIT_PRUNE_BATCH),
    )


def list_audit(conn: sqlite3.Connection, limit: int, before_id: int | None) -> AuditList:
    rows = conn.execute(
        "SELECT id, at, actor, action, target, affected, source FROM audit_log"
        " WHERE id < ? ORDER BY id DESC LIMIT ?",
        (before_id if before_id is not None else 2**63 - 1, limit + 1),
    ).fetchall()
    entries = [
        AuditEntry(
            id=r[0],
            at=rfc3339(r[1]) or "",
            actor=r[2],
            action=r[3],
            target=r[4],
            affected=r[5],
            source=r[6],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return AuditList(entries=entries, next_before=entries[-1].id if more and entries else None)


def record_history(tx: Tx) -> None:
    """Snapshot every queue for the current minute; drop snapshots past the history's age."""
    tx.execute(
        "INSERT OR REPLACE INTO queue_history (queue, minute, completed, failed, depth)"
        " SELECT q.name, ?, COALESCE(s.completed, 0), COALESCE(s.failed, 0),"
        " (SELECT COALESCE(sum(n), 0) FROM queue_counts AS c WHERE c.queue = q.name"
        "  AND c.state IN ('pending', 'scheduled', 'retrying'))"
        " FROM queues AS q LEFT JOIN queue_stats AS s ON s.queue = q.name",
        (minute_of(tx.now),),
    )
    tx.execute("DELETE FROM queue_history WHERE minute < ?", (tx.now - KEEP_MS,))


def read_history(conn: sqlite3.Connection, queue: str | None, since: int) -> list[Snapshot]:
    """Snapshots from `since` on (plus the one before, for the first minute's rate), summed
    over every queue unless one is named. Keyed on (minute, queue): a range read."""
    start = conn.execute(
        "SELECT max(minute) FROM queue_history WHERE minute < ?"
        + (" AND queue = ?" if queue else ""),
        (since, queue) if queue else (since,),
    ).fetchone()[0]
    where = "minute >= ?" + (" AND queue = ?" if queue else "")
    args: tuple[object, ...] = (start if start is not None else since,)
    rows = conn.execute(
        f"SELECT minute, sum(completed), sum(failed), sum(depth) FROM queue_history"
        f" WHERE {where} GROUP BY minute ORDER BY minute",
        (*args, queue) if queue else args,
    ).fetchall()
    return [Snapshot(*row) for row in rows]

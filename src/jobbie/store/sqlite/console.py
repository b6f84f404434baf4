"""The web console's data: failures grouped by error signature, and the audit log."""

from __future__ import annotations

import sqlite3

from jobbie.models import AuditEntry, AuditList, FailureGroup
from jobbie.store.console import AUDIT_PRUNE_BATCH, AuditRecord
from jobbie.store.sqlite.writer import Tx
from jobbie.timeutil import rfc3339


def failure_groups(conn: sqlite3.Connection, limit: int) -> list[FailureGroup]:
    """Dead and retrying jobs by signature, most frequent first. Served by the partial index
    jobs_error_signature (error_signature, state): only jobs that ever failed are read."""
    rows = conn.execute(
        "SELECT error_signature, count(*), group_concat(DISTINCT queue), min(failed_at),"
        " max(failed_at) FROM jobs"
        " WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')"
        " GROUP BY error_signature ORDER BY count(*) DESC, error_signature LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        FailureGroup(
            signature=sig,
            count=count,
            queues=sorted(queues.split(",")) if queues else [],
            first_seen=rfc3339(first),
            last_seen=rfc3339(last),
        )
        for sig, count, queues, first, last in rows
    ]


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

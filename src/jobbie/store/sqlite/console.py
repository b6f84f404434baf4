"""Reads for the web console: failures grouped by error signature."""

from __future__ import annotations

import sqlite3

from jobbie.models import FailureGroup
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

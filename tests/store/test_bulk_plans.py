"""Bulk chunks are found by key: on a big table a chunk of 200 jobs must not scan an index of
every job in the states it touches (that made each chunk cost ~50 ms at 1M jobs)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from jobbie.models import SearchRequest
from jobbie.store.bulk import APPLIES_TO
from jobbie.store.params import BulkSpec, FetchParams
from jobbie.store.search import search_filter
from jobbie.store.sqlite import bulk, claim
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.writer import Tx


class _PlanOnly:
    """Records the plan of each statement instead of running it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        plan = " | ".join(r[3] for r in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        self.plans.append(plan)
        return self.conn.execute("SELECT 1 WHERE 0")


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = open_connection(tmp_path / "plans.db", durable=False)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    # Many finished jobs, so that an index on state looks tempting to the planner.
    conn.execute(
        "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
        " retry_base_delay_ms, retry_max_delay_ms, created_at, completed_at, unique_key, batch_id)"
        " SELECT 'job_' || value, 'q', CASE value % 3 WHEN 0 THEN 'dead' WHEN 1 THEN 'completed'"
        " ELSE 'pending' END, 'null', 2, 3, 'none', 0, 0, value, value,"
        " CASE WHEN value % 5 = 0 THEN 'u' || value END, CASE WHEN value % 7 = 0 THEN 'b' END"
        " FROM (WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n"
        " WHERE value < 20000) SELECT value FROM n)"
    )
    conn.execute("ANALYZE")
    return conn


def test_chunk_statements_look_jobs_up_by_key(conn: sqlite3.Connection) -> None:
    spec = BulkSpec(action="retry", filter=search_filter(SearchRequest(state=["dead"])))
    recorder = _PlanOnly(conn)
    tx = Tx(conn, 0)
    tx.conn = recorder  # type: ignore[assignment]
    chunk = list(range(1, 201))
    bulk.still_matching(tx, spec, chunk)
    for action in (bulk.retry, bulk.requeue, bulk.cancel, bulk.delete):
        action(tx, chunk)
    bulk.move(tx, chunk, "other", APPLIES_TO["move"])
    bulk.change_priority(tx, chunk, 0)
    assert recorder.plans

    for plan in recorder.plans:
        if "jobs" not in plan:
            continue
        assert "INDEX jobs_state" not in plan and "INDEX jobs_queue_state" not in plan, plan
        assert "INDEX jobs_unique_key" not in plan and "INDEX jobs_batch" not in plan, plan
        assert "SCAN unique_locks" not in plan, plan


def test_every_guarded_state_change_finds_its_job_by_key(conn: sqlite3.Connection) -> None:
    """A guard on `state` must not lead the planner to an index of every job in that state:
    leasing a claimed job once scanned all pending jobs (O(pending) per fetch)."""
    plans = []
    for sql, params in [
        (
            "UPDATE jobs SET state = 'active' WHERE seq IN (SELECT value FROM json_each(?))"
            " AND +state = ?",
            ("[1, 2]", "pending"),
        ),
        ("UPDATE jobs SET state = ? WHERE seq = ? AND state = ? AND attempt = ?", ("x", 1, "y", 1)),
    ]:
        plans.append(" | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)))
    for plan in plans:
        assert "INTEGER PRIMARY KEY" in plan, plan
        assert "jobs_state" not in plan, plan


def test_the_claim_leases_by_key(tmp_path: Path) -> None:
    # A database without statistics (as a server's is), where the planner is easiest to tempt.
    conn = open_connection(tmp_path / "fresh.db", durable=False)
    migrate(conn)
    recorder = _PlanOnly(conn)
    tx = Tx(conn, 0)
    tx.conn = recorder  # type: ignore[assignment]
    claim._lease(
        tx, FetchParams(queues=("q",), worker_id="w", hostname=None, lease_ms=1, count=2), [1, 2]
    )
    [plan] = [p for p in recorder.plans if p.startswith("SEARCH jobs")]
    assert "INTEGER PRIMARY KEY" in plan, plan

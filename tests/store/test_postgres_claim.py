"""The PostgreSQL claim with several servers on one database, and its query plans.

The contract suite runs one store; here two stores (two servers' pools) share a database and
claim at the same moment, as servers behind a load balancer do: no job is handed out twice,
and a queue's concurrency limit and throttle hold across both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from jobbie.errors import JobbieError
from jobbie.store.params import AckParams, FetchParams
from jobbie.store.postgres import claim, finish
from jobbie.store.postgres.database import migrate
from jobbie.store.postgres.store import PostgresStore
from jobbie.store.postgres.tx import Row, Tx
from tests.contract.support import new_job
from tests.store.pg_servers import at_once, fetch, with_servers

pytestmark = pytest.mark.postgres


def with_two_servers(
    url: str, test: Callable[[PostgresStore, PostgresStore], Awaitable[None]]
) -> None:
    """Run `test` with two stores open on the database at `url`, as two servers."""
    with_servers(url, 2, lambda stores: test(*stores))


def test_two_servers_draining_one_queue_never_hand_out_a_job_twice(url: str) -> None:
    async def test(a: PostgresStore, b: PostgresStore) -> None:
        answer = await a.enqueue_batch([new_job("q", n) for n in range(300)], None)
        handed: list[str] = []
        while batch := await at_once((a, b), fetches=12, count=5):
            handed.extend(job.job_id for job in batch)
        assert len(handed) == len(set(handed)) == 300
        assert set(handed) == set(answer.job_ids)
        queue = await b.get_queue("q")
        assert (queue.counts.pending, queue.counts.active) == (0, 300)

    with_two_servers(url, test)


def test_a_concurrency_limit_holds_across_servers(url: str) -> None:
    async def test(a: PostgresStore, b: PostgresStore) -> None:
        await a.set_concurrency("q", 3)
        await b.enqueue_batch([new_job("q", n) for n in range(20)], None)
        handed = await at_once((a, b), fetches=16, count=2)
        assert len(handed) == 3
        assert (await a.get_queue("q")).counts.active == 3

        # A slot freed on one server is taken on the other, and only one.
        await a.ack(AckParams(job_id=handed[0].job_id, result="null"))
        assert len(await at_once((b, a), fetches=8, count=2)) == 1
        assert (await b.get_queue("q")).counts.active == 3

    with_two_servers(url, test)


def test_a_throttle_holds_across_servers(url: str) -> None:
    async def test(a: PostgresStore, b: PostgresStore) -> None:
        await b.set_throttle("q", 4, 60_000)
        await a.enqueue_batch([new_job("q", n) for n in range(20)], None)
        assert len(await at_once((a, b), fetches=16, count=3)) == 4
        assert await at_once((b, a), fetches=4, count=3) == []

    with_two_servers(url, test)


def test_a_unique_key_enqueued_on_two_servers_at_once_makes_one_job(url: str) -> None:
    async def test(a: PostgresStore, b: PostgresStore) -> None:
        answers = await asyncio.gather(
            *((a, b)[n % 2].enqueue(new_job("q", n, unique_key="k")) for n in range(12))
        )
        assert len({answer.job_id for answer in answers}) == 1
        assert sum(not answer.unique_existing for answer in answers) == 1
        assert (await a.get_queue("q")).counts.pending == 1

    with_two_servers(url, test)


def test_racing_acks_on_two_servers_complete_a_job_once(url: str) -> None:
    async def test(a: PostgresStore, b: PostgresStore) -> None:
        await a.enqueue(new_job("q"))
        [job] = await fetch(a, "w1")
        ack = AckParams(job_id=job.job_id, result="null")
        answers = await asyncio.gather(
            *((a, b)[n % 2].ack(ack) for n in range(6)), return_exceptions=True
        )
        assert sum(answer == "completed" for answer in answers) == 1
        assert all(isinstance(x, JobbieError) for x in answers if x != "completed")
        assert (await b.get_queue("q")).totals.completed == 1

    with_two_servers(url, test)


# --- plans --------------------------------------------------------------------------------

# Jobs in the plan test's table (95% finished): a million, the size the plans must hold at
# (about 13 s to fill and analyze).
ROWS = 1_000_000


class _Explain(Tx):
    """Records the plan of each statement instead of running it: the plan PostgreSQL uses for
    these values (`generic=False`) or the generic one it may settle on for a statement the
    driver prepared (`generic=True`)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], *, generic: bool) -> None:
        super().__init__(conn, 0)
        self.generic = generic
        self.plans: list[str] = []

    async def all(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        args = psycopg.AsyncClientCursor(self.conn).mogrify(
            "(" + ", ".join(["%s"] * len(params or ())) + ")", params
        )
        if self.generic:
            numbered = iter(range(1, 1000))
            await self.conn.execute(
                "PREPARE claim_step AS " + re.sub("%s", lambda _: f"${next(numbered)}", sql)
            )
            await self.conn.execute("SET plan_cache_mode = force_generic_plan")
            cur = await self.conn.execute(f"EXPLAIN EXECUTE claim_step{args}")
            await self.conn.execute("RESET plan_cache_mode")
            await self.conn.execute("DEALLOCATE claim_step")
        else:
            cur = await self.conn.execute("EXPLAIN " + sql, params)
        self.plans.append("\n".join(row["QUERY PLAN"] for row in await cur.fetchall()))
        return []


async def _claim_plans(url: str) -> dict[str, list[str]]:
    """The plans of the claim's statements on a big table, custom and generic."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn)
        # Many jobs, most finished, pending ones spread over ten queues.
        await conn.execute(
            "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
            " retry_base_delay_ms, retry_max_delay_ms, created_at, completed_at)"
            " SELECT 'job_' || g, 'q' || (g %% 10), CASE WHEN g %% 19 = 0 THEN 'pending'"
            " ELSE 'completed' END, 'null', g %% 3, 3, 'none', 0, 0, g, g"
            " FROM generate_series(1, %s) AS g",
            (ROWS,),
        )
        await conn.execute("ANALYZE jobs")
        plans: dict[str, list[str]] = {}
        for mode in ("custom", "generic"):
            tx = _Explain(conn, generic=mode == "generic")
            params = FetchParams(
                queues=("q3", "q4"), worker_id="w", hostname=None, lease_ms=1000, count=10
            )
            await claim._takes(tx, {"q3": 10, "q4": 10}, 10)
            await claim._lease(tx, params, {"q3": 10}, 1_000_000, first=True)
            await _fetch_plain(tx, dataclasses.replace(params, queues=("q3",)))
            plans[mode] = tx.plans
    return plans


async def _fetch_plain(tx: Tx, params: FetchParams) -> None:
    """Run `fetch_plain`'s statement (a worker recorded a moment ago: it would not run)."""
    claim.touch_worker(tx, params.worker_id, params.hostname, list(params.queues))
    await claim.fetch_plain(tx, params)


def test_the_claim_reads_the_pending_index_and_leases_by_key(url: str) -> None:
    for mode, (candidates, *leases) in asyncio.run(_claim_plans(url)).items():
        assert len(leases) == 2, "the claim's lease and the one-statement fetch"
        for plan in (candidates, *leases):
            assert "jobs_pending" in plan, (mode, plan)
            assert "Seq Scan on jobs" not in plan, (mode, plan)
        # Each queue's jobs come in index order (only the merge of queues sorts).
        assert "Sort" not in candidates.split("Nested Loop")[1], (mode, candidates)
        for lease in leases:
            assert "Sort" not in lease.split("CTE ranked")[0], (mode, lease)
            # Locked once, in the CTE; the UPDATE finds each locked row where it is (its ctid).
            assert "CTE picked" in lease and "LockRows" in lease, (mode, lease)
            assert "Tid Scan on jobs" in lease.split("CTE leased")[1], (mode, lease)


async def _plans_with_stale_statistics(url: str) -> tuple[str, str, str]:
    """The plans of a plain and a fair claim, and of a one-statement fetch, when the
    statistics were taken while the queue was empty and 20,000 jobs arrived since (autovacuum
    has not analyzed them yet)."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn)
        insert = (
            "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
            " retry_base_delay_ms, retry_max_delay_ms, created_at, completed_at)"
            " SELECT 'job_' || g, 'q', %s, 'null', 2, 3, 'none', 0, 0, g, g"
            " FROM generate_series(%s, %s) AS g"
        )
        await conn.execute(insert, ("completed", 1, 40_000))
        await conn.execute("ANALYZE jobs")
        await conn.execute(insert, ("pending", 40_001, 60_000))
        tx = _Explain(conn, generic=False)
        params = FetchParams(queues=("q",), worker_id="w", hostname=None, lease_ms=1000, count=100)
        await claim._lease(tx, params, {"q": 100}, None, first=True)
        await claim._lease(tx, params, {}, None, first=True, fair=[(40_001, 40_001)])
        await _fetch_plain(tx, params)
        return tx.plans[0], tx.plans[1], tx.plans[2]


def test_stale_statistics_never_turn_the_claim_into_a_scan_of_every_pending_job(
    url: str,
) -> None:
    # Seen in a drain: with statistics from an empty queue the planner thought the partial
    # indexes on pending jobs held one row, and joined the UPDATE to a full scan of one of
    # them (200 ms per claim of 100 out of 20,000 pending).
    for plan in asyncio.run(_plans_with_stale_statistics(url)):
        leased = plan.split("CTE leased")[1]
        assert "Tid Scan on jobs" in leased, plan
        assert "jobs_pending" not in leased and "jobs_key_pending" not in leased, plan


async def _guarded_plans(url: str) -> list[str]:
    """Plans of updates by key guarded with `finish.guarded`, when the statistics were taken
    while no job was active and 20,000 are active now."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await migrate(conn)
        insert = (
            "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
            " retry_base_delay_ms, retry_max_delay_ms, created_at, completed_at, attempt,"
            " lease_expires_at) SELECT 'job_' || g, 'q', %s, 'null', 2, 3, 'none', 0, 0, g, g,"
            " 1, g FROM generate_series(%s, %s) AS g"
        )
        await conn.execute(insert, ("completed", 1, 40_000))
        await conn.execute("ANALYZE jobs")
        await conn.execute(insert, ("active", 40_001, 60_000))
        state = finish.guarded("jobs.state")
        statements = [
            f"UPDATE jobs SET lease_expires_at = 1 WHERE seq = 50000 AND {state} = 'active'"
            " AND attempt = 1",
            "UPDATE jobs SET state = 'completed' FROM unnest('{50000,50001}'::bigint[],"
            " '{1,1}'::int[]) AS v(seq, attempt)"
            f" WHERE jobs.seq = v.seq AND {state} = 'active' AND jobs.attempt = v.attempt",
        ]
        plans = []
        for sql in statements:
            cur = await conn.execute("EXPLAIN " + sql)
            plans.append("\n".join(row["QUERY PLAN"] for row in await cur.fetchall()))
        return plans


def test_guarded_updates_look_jobs_up_by_key_whatever_the_statistics(url: str) -> None:
    # Unguarded (`state = 'active'`), both plans scanned the whole jobs_leases index here.
    for plan in asyncio.run(_guarded_plans(url)):
        assert "jobs_pkey" in plan, plan
        assert "jobs_leases" not in plan, plan

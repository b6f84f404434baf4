"""Fair queueing on PostgreSQL with several servers on one database, the key counters' slots
when pruned, and the plan of the per-key read.

The contract suite (tests/contract/test_fairness.py) covers the rules on one store; here
stores share a database as servers behind a load balancer do: per-key limits and turns hold
across them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from jobbie.store.fairness import KeyRules
from jobbie.store.params import AckParams, FetchParams
from jobbie.store.postgres import fairpick
from jobbie.store.postgres.database import migrate
from jobbie.store.postgres.store import PostgresStore
from jobbie.store.postgres.tx import Row, Tx
from tests.contract.support import new_job
from tests.store.pg_servers import at_once, fetch, with_servers

pytestmark = pytest.mark.postgres


async def keyed(store: PostgresStore, key: str | None, n: int) -> list[str]:
    jobs = [new_job("q", {"key": key, "i": i}, key=key) for i in range(n)]
    return (await store.enqueue_batch(jobs, None)).job_ids


def test_per_key_concurrency_holds_across_three_servers(url: str) -> None:
    async def test(stores: list[PostgresStore]) -> None:
        a = stores[0]
        await a.set_fairness("q", "round_robin")
        await a.set_key_concurrency("q", 2)
        for key in ("k0", "k1", "k2"):
            await keyed(stores[1], key, 20)
        handed = await at_once(stores, fetches=24, count=3)
        assert Counter(job.key for job in handed) == {"k0": 2, "k1": 2, "k2": 2}
        # A slot freed on one server is taken on another, and only one.
        k0 = next(job for job in handed if job.key == "k0")
        await stores[2].ack(AckParams(job_id=k0.job_id, result="null"))
        again = await at_once(stores[::-1], fetches=12, count=2)
        assert [job.key for job in again] == ["k0"]
        listed = {k.key: (k.pending, k.active) for k in await a.queue_keys("q", 10)}
        assert listed == {"k0": (17, 2), "k1": (18, 2), "k2": (18, 2)}

    with_servers(url, 3, test)


def test_round_robin_turns_are_shared_by_the_servers(url: str) -> None:
    async def test(stores: list[PostgresStore]) -> None:
        a, b = stores
        await a.set_fairness("q", "round_robin")
        for key in ("k0", "k1", "k2", "k3"):
            await keyed(b, key, 3)
        served = []
        for n in range(12):
            [job] = await fetch(stores[n % 2], f"w{n}")
            served.append(job.key)
        assert served == ["k0", "k1", "k2", "k3"] * 3

    with_servers(url, 2, test)


def test_a_per_key_throttle_holds_across_servers(url: str) -> None:
    async def test(stores: list[PostgresStore]) -> None:
        a, b = stores
        await b.set_key_throttle("q", 3, 60_000)
        await keyed(a, "k0", 10)
        await keyed(a, "k1", 10)
        handed = await at_once(stores, fetches=16, count=2)
        assert Counter(job.key for job in handed) == {"k0": 3, "k1": 3}
        claim = await a.fetch(
            FetchParams(queues=("q",), worker_id="w", hostname=None, lease_ms=1000, count=1)
        )
        assert claim.jobs == []
        # The fetch that found nothing says when the first key's window reopens.
        assert claim.retry_at is not None and claim.retry_at > a.clock.now_ms()

    with_servers(url, 2, test)


async def _rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall() if cur.description else []


def test_pruning_removes_a_key_counter_only_when_its_slots_sum_to_zero(url: str) -> None:
    async def test(stores: list[PostgresStore]) -> None:
        [store] = stores
        await store.set_fairness("q", "round_robin")
        # Slots as concurrent transactions leave them: one negative, the sum still positive.
        await _rows(
            url,
            "INSERT INTO key_counts (queue, key, state, slot, n) VALUES"
            " ('q', 'kept', 'pending', 1, -1), ('q', 'kept', 'pending', 2, 2),"
            " ('q', 'gone', 'pending', 1, -3), ('q', 'gone', 'pending', 2, 3)",
        )
        await _rows(url, "INSERT INTO queue_keys (queue, key) VALUES ('q', 'kept'), ('q', 'gone')")
        assert await store.prune_keys(100) == 3  # two slots and a turn row
        counts = await _rows(url, "SELECT key, slot, n FROM key_counts ORDER BY key, slot")
        assert counts == [{"key": "kept", "slot": 1, "n": -1}, {"key": "kept", "slot": 2, "n": 2}]
        turns = await _rows(url, "SELECT key FROM queue_keys WHERE key <> '' ORDER BY key")
        assert turns == [{"key": "kept"}]
        assert [k.key for k in await store.queue_keys("q", 10)] == ["kept"]
        assert await store.keys_with_backlog() == {"q": 1}

    with_servers(url, 1, test)


def test_a_forgotten_key_is_served_again_when_its_job_is_retried(url: str) -> None:
    async def test(stores: list[PostgresStore]) -> None:
        [store] = stores
        await store.set_fairness("q", "round_robin")
        [job_id] = await keyed(store, "once", 1)
        [job] = await fetch(store, "w")
        await store.ack(AckParams(job_id=job.job_id, result="null"))
        await store.prune_keys(100)
        assert await _rows(url, "SELECT key FROM queue_keys WHERE key = 'once'") == []
        await store.retry_job(job_id)
        [again] = await fetch(store, "w")
        assert again.job_id == job_id

    with_servers(url, 1, test)


# --- plans --------------------------------------------------------------------------------


class _Plans(Tx):
    """Runs each statement and records its plan."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], now: int) -> None:
        super().__init__(conn, now)
        self.plans: list[str] = []

    async def all(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        cur = await self.conn.execute("EXPLAIN " + sql, params)
        self.plans.append("\n".join(row["QUERY PLAN"] for row in await cur.fetchall()))
        return await super().all(sql, params)


def test_the_fair_pick_reads_keys_in_turn_order_and_each_key_by_its_index(url: str) -> None:
    async def main() -> list[str]:
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row
        ) as conn:
            await migrate(conn)
            # 2,000 keys with pending jobs among many finished ones, and jobs without a key.
            await conn.execute(
                "INSERT INTO jobs (id, queue, state, payload, priority, max_retries,"
                " retry_backoff, retry_base_delay_ms, retry_max_delay_ms, created_at, key)"
                " SELECT 'job_' || g, 'q', CASE WHEN g % 5 = 0 THEN 'pending'"
                " ELSE 'completed' END, 'null', 0, 3, 'none', 0, 0, g,"
                " CASE WHEN g % 7 = 0 THEN NULL ELSE 'k' || (g % 2000) END"
                " FROM generate_series(1, 100000) AS g"
            )
            await conn.execute("UPDATE queue_keys SET served = ('x' || md5(key))::bit(20)::int")
            await conn.execute("ANALYZE")
            tx = _Plans(conn, 0)
            rules = KeyRules(round_robin=True, concurrency=2, rate=None, window_ms=None)
            picked = await fairpick.pick(tx, "q", rules, 10)
            assert len({job["key"] for job in picked}) == 10
            return tx.plans

    lanes, *_ = asyncio.run(main())
    assert "jobs_key_pending" in lanes, lanes
    assert "queue_keys_turn" in lanes, lanes
    assert "Seq Scan on jobs" not in lanes, lanes
    # Keys come in turn order from the index: only as many are visited as the fetch needs.
    assert "Sort" not in lanes, lanes

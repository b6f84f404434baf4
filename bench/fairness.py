"""Claim cost of fair queueing: a fetch from one queue holding 1,000,000 pending jobs over
10,000 keys, in `fifo` mode (the plain claim) and in `round_robin` mode, on one backend.

The data is written straight into a store through the Store protocol (no HTTP), then fetches
are timed in the store, alternating the modes round by round so the machine's noise falls on
both alike: `count 1` fetches (what an unbatched worker asks) and `count 100` fetches (a
batched worker). Jobs fetched stay active; every round fetches from the same large backlog.
Reports the median milliseconds per fetch and the ratio round_robin / fifo (the issue's target
is within 2x), then the query plans of the fair claim's two reads.

    python -m bench.fairness                       # SQLite, in a temporary directory
    python -m bench.fairness --database postgresql://postgres@127.0.0.1:5432/postgres
    python -m bench.fairness --jobs 100000 --keys 1000 --rounds 3   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from jobbie.clock import Clock
from jobbie.store.base import Store
from jobbie.store.factory import is_postgres, open_store
from jobbie.store.params import FetchParams, NewJob, Retention
from jobbie.store.rules import DEFAULT_RETRY

QUEUE = "fair"
PER_BATCH = 5000


def new_job(i: int, keys: int) -> NewJob:
    return NewJob(
        queue=QUEUE,
        payload=msgspec.json.encode({"i": i}).decode(),
        priority=2,
        retry=DEFAULT_RETRY,
        key=f"tenant-{i % keys}",
    )


async def fill(store: Store, jobs: int, keys: int) -> None:
    t0 = time.perf_counter()
    for lo in range(0, jobs, PER_BATCH):
        await store.enqueue_batch(
            [new_job(i, keys) for i in range(lo, min(lo + PER_BATCH, jobs))], None
        )
    wall = time.perf_counter() - t0
    print(f"inserted {jobs:,} jobs over {keys:,} keys in {wall:.0f} s", flush=True)


async def time_fetches(store: Store, count: int, n: int) -> list[float]:
    """Milliseconds per fetch of `count` jobs, `n` fetches."""
    took = []
    for _ in range(n):
        params = FetchParams(
            queues=(QUEUE,), worker_id="bench", hostname=None, lease_ms=3_600_000, count=count
        )
        t0 = time.perf_counter()
        claim = await store.fetch(params)
        took.append((time.perf_counter() - t0) * 1000)
        assert len(claim.jobs) == count, len(claim.jobs)
    return took


async def explain(data_dir: str, database: str | None) -> list[str]:
    """The plans of the fair claim's reads: the keys in turn order with each one's oldest
    ready job, and one key's next jobs."""
    lane = (
        "SELECT seq FROM jobs WHERE queue = 'fair' AND key = 'tenant-7' AND state = 'pending'"
        " AND priority = 2 AND seq > -1 ORDER BY seq LIMIT 10"
    )
    lines: list[str] = []
    if database is not None and is_postgres(database):
        import psycopg

        # The core of postgres/fairpick.py's first read: one statement for all the keys.
        walk = (
            "SELECT k.key, k.served, h.seq FROM queue_keys AS k CROSS JOIN LATERAL"
            " (SELECT seq FROM jobs WHERE queue = k.queue AND key = k.key AND state = 'pending'"
            " AND priority = 2 AND seq > -1 ORDER BY seq LIMIT 1) AS h"
            " WHERE k.queue = 'fair' AND k.key <> '' ORDER BY k.served, k.key COLLATE \"C\""
            " LIMIT 100"
        )
        with psycopg.connect(database) as conn:
            for sql in (walk, lane):
                lines.append(sql)
                lines += ["  " + r[0] for r in conn.execute(f"EXPLAIN {sql}").fetchall()]
        return lines
    import sqlite3

    # sqlite/fairpick.py reads the keys in turn order, then each key's jobs.
    walk = "SELECT key, served FROM queue_keys WHERE queue = 'fair' ORDER BY served, key"
    db = sqlite3.connect(str(Path(data_dir) / "jobbie.db"))
    for sql in (walk, lane):
        lines.append(sql)
        lines += ["  " + r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
    db.close()
    return lines


async def run(args: argparse.Namespace) -> dict[str, Any]:
    database = args.database
    if database is not None and is_postgres(database):
        # A database of its own, dropped at the end.
        import psycopg

        name = f"jobbie_fair_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        base, _, _ = database.rpartition("/")
        database = f"{base}/{name}"
    tmp = tempfile.TemporaryDirectory(prefix="jobbie-fair-")
    store = await open_store(
        database=database,
        data_dir=Path(tmp.name),
        durable=False,
        retention=Retention(),
        clock=Clock(),
    )
    results: dict[str, list[float]] = {}
    try:
        await fill(store, args.jobs, args.keys)
        if database is not None and is_postgres(database):
            # Statistics, as autovacuum would gather them within a minute: a table filled
            # just now looks empty to the planner, which then reads a key's jobs by
            # (queue, state) and sorts them instead of using jobs_key_pending.
            import psycopg

            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute("ANALYZE")
        for _ in range(args.rounds):
            for mode in ("fifo", "round_robin"):
                await store.set_fairness(QUEUE, mode)
                for count, n in ((1, args.fetches), (100, max(1, args.fetches // 10))):
                    results.setdefault(f"{mode} count {count}", []).extend(
                        await time_fetches(store, count, n)
                    )
        plans = await explain(tmp.name, database)
    finally:
        await store.close()
        if database is not None and is_postgres(database):
            import psycopg

            with psycopg.connect(args.database, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {database.rpartition('/')[2]} WITH (FORCE)")
        tmp.cleanup()
    medians = {label: statistics.median(times) for label, times in results.items()}
    return {"medians": medians, "plans": plans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a postgresql:// DSN (default: SQLite)")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fetches", type=int, default=200, help="count-1 fetches per round")
    args = parser.parse_args()
    backend = "PostgreSQL" if args.database else "SQLite"
    report = asyncio.run(run(args))
    medians = report["medians"]
    print(f"\n{backend}, {args.jobs:,} pending jobs over {args.keys:,} keys, store-level fetch")
    print(f"{'fetch':<12} {'fifo ms':>9} {'round_robin ms':>15} {'ratio':>7}")
    for count in (1, 100):
        fifo, rr = medians[f"fifo count {count}"], medians[f"round_robin count {count}"]
        print(f"{'count ' + str(count):<12} {fifo:>9.2f} {rr:>15.2f} {rr / fifo:>6.2f}x")
    print("\nplans of the fair claim's reads:")
    for line in report["plans"]:
        print(line)


if __name__ == "__main__":
    main()

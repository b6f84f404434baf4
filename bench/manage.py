"""Benchmark the management API on a big table: `python -m bench.manage [--quick] [--json PATH]`.

One fresh `jobbie server` (default durability full) on a temporary data directory:

1. load `--jobs` jobs (default 1,000,000) across 10 queues with POST /api/v1/enqueue/batch
   (5,000 per call); payloads `{"user_id","email","plan","items","amount"}`, tags
   `{"tenant": t0..t19, "region"}`;
2. put them into a mix of states: per queue the oldest 40% are fetched (count=1000, lease 1 h)
   and acked (completed), the next 10% - enqueued with max_retries 0 - are fetched and failed
   once (dead), the rest stay pending;
3. measure GET /api/v1/queues and five search shapes (first call, then the median and min-max
   of `--reps` calls; client latency, the server's `duration_ms`, `total`);
4. EXPLAIN QUERY PLAN of each search (page and count query, built by the project's own
   `search_filter`/`page_sql`/`count_sql`) and of the bulk retry's chunk query, on the server's
   database opened read-only;
5. a bulk retry of every dead job (202 + progress polling), while one worker fetches and acks
   on another queue; its p50/p99 are compared with the same loop before the bulk.

Every step checks its result (counts per state, search totals against the expected numbers,
affected == dead, no dead job left) and the script exits 1 on a mismatch. The server helpers,
the CPU window ("other" = other processes on the machine meanwhile) and the raw asyncio HTTP
client come from `bench.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.run import (
    ACK_BATCH,
    ENQUEUE_BATCH,
    FETCH,
    JSON_HEADERS,
    QUEUES,
    BenchError,
    Poster,
    Server,
    Window,
    check,
    decode,
    filesystem_of,
    fmt,
    open_posters,
    pc,
    percentile,
    size_label,
)
from jobbie.models import SearchRequest
from jobbie.store.params import BulkSpec
from jobbie.store.search import search_filter
from jobbie.store.signature import error_signature
from jobbie.store.sqlite.bulk import match_clause
from jobbie.store.sqlite.search_sql import count_sql, page_sql
from jobbie.store.sqlite.store import DB_FILE

SEARCH = "/api/v1/jobs/search"
BULK = "/api/v1/jobs/bulk"
N_QUEUES = 10
PER_CALL = 5000
LOAD_CONNS = 2
LEASE_S = 3600
PLANS = ("free", "pro", "team")
REGIONS = ("eu-west", "us-east", "ap-south")
LIVE_QUEUE = "live"  # the queue of the worker that runs during the bulk retry
CONTAINS_USER = 12345
SEARCH_QUEUE = f"q{CONTAINS_USER % N_QUEUES}"  # the queue holding user 12345


# --- the data set ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Job i goes to queue q{i % 10}; the global index ranges decide each job's fate."""

    jobs: int
    completed_per_queue: int
    dead_per_queue: int

    @property
    def per_queue(self) -> int:
        return self.jobs // N_QUEUES

    @property
    def pending_per_queue(self) -> int:
        return self.per_queue - self.completed_per_queue - self.dead_per_queue

    @property
    def dead(self) -> int:
        return self.dead_per_queue * N_QUEUES

    def phases(self) -> list[tuple[str, range, int | None]]:
        """(name, global indexes, max_retries) in load order: FIFO per queue then hands the
        to-complete jobs out first, the to-die ones next."""
        a = self.completed_per_queue * N_QUEUES
        b = a + self.dead
        return [
            ("completed", range(0, a), None),
            ("dead", range(a, b), 0),
            ("pending", range(b, self.jobs), None),
        ]


def make_layout(jobs: int) -> Layout:
    per_queue = jobs // N_QUEUES
    # 10% dead, but always above the 10,000 matches that send a bulk to the background.
    dead = max(per_queue // 10, -(-10_001 // N_QUEUES))
    return Layout(
        jobs=per_queue * N_QUEUES, completed_per_queue=per_queue * 4 // 10, dead_per_queue=dead
    )


def payload(i: int) -> dict[str, Any]:
    return {
        "user_id": i,
        "email": f"user{i}@example.com",
        "plan": PLANS[i % 3],
        "items": [{"sku": f"sku-{(i + k) % 97}", "qty": 1 + k} for k in range(1 + i % 3)],
        "amount": i % 1000,
    }


def tags(i: int) -> dict[str, str]:
    return {"tenant": f"t{(i // N_QUEUES) % 20}", "region": REGIONS[(i // 7) % 3]}


def job_spec(i: int, max_retries: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"queue": f"q{i % N_QUEUES}", "payload": payload(i), "tags": tags(i)}
    if max_retries is not None:
        spec["max_retries"] = max_retries
    return spec


def batch_bodies(indexes: range, max_retries: int | None) -> Iterator[tuple[int, bytes]]:
    for lo in range(indexes.start, indexes.stop, PER_CALL):
        hi = min(lo + PER_CALL, indexes.stop)
        jobs = [job_spec(i, max_retries) for i in range(lo, hi)]
        yield hi - lo, json.dumps({"jobs": jobs}, separators=(",", ":")).encode()


def expected_jq_total(layout: Layout, queue: str) -> int:
    q = int(queue[1:])
    return sum(
        1 for i in range(q, layout.jobs, N_QUEUES) if PLANS[i % 3] == "pro" and i % 1000 > 500
    )


def expected_tenant_total(layout: Layout, tenant: str) -> int:
    return sum(1 for i in range(layout.jobs) if tags(i)["tenant"] == tenant)


# --- setting the table up -------------------------------------------------------------------------


@dataclass
class Step:
    """A timed setup step: rate and where the CPU went."""

    label: str
    jobs: int
    window: Window

    def row(self) -> dict[str, Any]:
        w = self.window
        return {
            "label": self.label,
            "jobs": self.jobs,
            "wall_s": w.wall,
            "jobs_per_s": self.jobs / w.wall,
            "server_cpu_pct": 100 * w.srv_cpu / w.wall,
            "client_cpu_pct": 100 * w.cli_cpu / w.wall,
            "other_cpu_pct": 100 * w.other_cpu / w.wall,
        }


async def _load(server: Server, layout: Layout) -> int:
    loaded = 0
    async with open_posters("raw", server, LOAD_CONNS) as posters:
        for _, indexes, max_retries in layout.phases():
            bodies = batch_bodies(indexes, max_retries)

            async def loader(poster: Poster, bodies: Iterator[tuple[int, bytes]] = bodies) -> int:
                n = 0
                for count, body in bodies:  # shared iterator: each batch goes to one loader
                    status, data = await poster.post(ENQUEUE_BATCH, body)
                    ids = decode(status, data, 201, "POST /api/v1/enqueue/batch")["job_ids"]
                    check(len(ids) == count, f"batch of {count} returned {len(ids)} ids")
                    n += count
                return n

            # Each phase is fully stored before the next starts, so FIFO order per queue is
            # completed-to-be, then dead-to-be, then pending.
            loaded += sum(await asyncio.gather(*(loader(p) for p in posters)))
    return loaded


def fetch_many(queue: str, worker_id: str, count: int) -> bytes:
    body = {
        "queues": [queue],
        "worker_id": worker_id,
        "timeout": 0,
        "count": count,
        "lease_duration": LEASE_S,
    }
    return json.dumps(body).encode()


async def _finish(server: Server, layout: Layout, kind: str, conc: int) -> int:
    """Fetch each queue's next jobs of this kind and ack them in batches ("completed") or fail
    each once ("dead"); chunks of 1000 are shared out among `conc` connections."""
    per_queue = layout.completed_per_queue if kind == "completed" else layout.dead_per_queue
    want_retries = 3 if kind == "completed" else 0
    chunks = iter(
        [
            (f"q{q}", min(1000, per_queue - lo))
            for lo in range(0, per_queue, 1000)
            for q in range(N_QUEUES)
        ]
    )
    done = 0

    async def worker(poster: Poster, worker_id: str) -> None:
        nonlocal done
        for queue, n in chunks:
            jobs: list[dict[str, Any]] = []
            while len(jobs) < n:
                status, data = await poster.post(FETCH, fetch_many(queue, worker_id, n - len(jobs)))
                jobs += decode(status, data, 200, f"fetch {queue}")["jobs"]
            for job in jobs:
                check(
                    job["max_retries"] == want_retries,
                    f"{kind} phase fetched job {job['job_id']} with max_retries "
                    f"{job['max_retries']} (expected {want_retries}): FIFO order broken?",
                )
            if kind == "completed":
                acks = [
                    {
                        "job_id": j["job_id"],
                        "result": None,
                        "worker_id": worker_id,
                        "attempt": j["attempt"],
                    }
                    for j in jobs
                ]
                status, data = await poster.post(ACK_BATCH, json.dumps({"acks": acks}).encode())
                results = decode(status, data, 200, "ack/batch")["results"]
                check(all(r.get("status") == "completed" for r in results), "ack/batch failed")
            else:
                for j in jobs:
                    body = json.dumps(
                        {"error": "bench: boom", "worker_id": worker_id, "attempt": j["attempt"]}
                    ).encode()
                    status, data = await poster.post(f"/api/v1/fail/{j['job_id']}", body)
                    answer = decode(status, data, 200, "fail")
                    check(answer["status"] == "dead", f"fail {j['job_id']}: {answer}")
            done += len(jobs)

    async with open_posters("raw", server, conc) as posters:
        await asyncio.gather(*(worker(p, f"setup-{kind}-{i}") for i, p in enumerate(posters)))
    return done


def queue_listing(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.get(QUEUES)
    listing = decode(r.status_code, r.content, 200, "GET /api/v1/queues")
    return {q["name"]: q for q in listing["queues"]}


def expect_layout(client: httpx.Client, layout: Layout, dead_retried: bool) -> None:
    queues = queue_listing(client)
    for q in range(N_QUEUES):
        name = f"q{q}"
        check(name in queues, f"queue {name} missing from GET /api/v1/queues")
        counts = queues[name]["counts"]
        expected = {
            "completed": layout.completed_per_queue,
            "dead": 0 if dead_retried else layout.dead_per_queue,
            "pending": layout.pending_per_queue + (layout.dead_per_queue if dead_retried else 0),
            "active": 0,
        }
        for state, n in expected.items():
            check(counts[state] == n, f"queue {name}: {state}={counts[state]}, expected {n}")


def setup(server: Server, layout: Layout, live_jobs: int) -> list[Step]:
    steps = []
    window = Window(server).start()
    loaded = asyncio.run(_load(server, layout))
    window.stop()
    check(loaded == layout.jobs, f"loaded {loaded} jobs, expected {layout.jobs}")
    steps.append(
        Step(
            f"load {size_label(layout.jobs)} ({PER_CALL}/call, {LOAD_CONNS} conns)", loaded, window
        )
    )
    print(f"  loaded {loaded:,} jobs in {window.wall:.1f} s", flush=True)

    window = Window(server).start()
    done = asyncio.run(_finish(server, layout, "completed", 4))
    window.stop()
    check(done == layout.completed_per_queue * N_QUEUES, f"completed {done}")
    steps.append(Step("complete: fetch 1000 + ack/batch, 4 conns", done, window))
    print(f"  completed {done:,} jobs in {window.wall:.1f} s", flush=True)

    window = Window(server).start()
    done = asyncio.run(_finish(server, layout, "dead", 8))
    window.stop()
    check(done == layout.dead, f"failed {done}")
    steps.append(Step("dead: fetch 1000 + fail each, 8 conns", done, window))
    print(f"  failed {done:,} jobs to dead in {window.wall:.1f} s", flush=True)

    with httpx.Client(base_url=server.url, timeout=300) as client:
        for lo in range(0, live_jobs, PER_CALL):
            jobs = [{"queue": LIVE_QUEUE, "payload": {"n": k}} for k in range(lo, lo + PER_CALL)]
            r = client.post(ENQUEUE_BATCH, content=json.dumps({"jobs": jobs}), headers=JSON_HEADERS)
            decode(r.status_code, r.content, 201, "enqueue live jobs")
        expect_layout(client, layout, dead_retried=False)
    return steps


# --- timing the management calls ------------------------------------------------------------------


@dataclass
class Timing:
    """First call and the repetitions of one request."""

    label: str
    first_ms: float
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    total: int | None = None
    expected: int | None = None
    other_cpu_pct: float = 0.0

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "label": self.label,
            "first_client_ms": self.first_ms,
            "client_ms_median": statistics.median(self.client_ms),
            "client_ms_min": min(self.client_ms),
            "client_ms_max": max(self.client_ms),
            "client_ms": self.client_ms,
            "total": self.total,
            "expected_total": self.expected,
            "other_cpu_pct": self.other_cpu_pct,
        }
        if self.server_ms:
            row |= {
                "server_ms_median": statistics.median(self.server_ms[1:] or self.server_ms),
                "server_ms_first": self.server_ms[0],
                "server_ms_min": min(self.server_ms[1:] or self.server_ms),
                "server_ms_max": max(self.server_ms[1:] or self.server_ms),
            }
        return row


def time_calls(
    server: Server, label: str, reps: int, call: Callable[[httpx.Client], dict[str, Any]]
) -> tuple[Timing, dict[str, Any]]:
    """One first call, then `reps` timed ones; `call` returns the decoded answer."""
    with httpx.Client(base_url=server.url, timeout=600) as client:
        window = Window(server).start()
        t0 = pc()
        answer = call(client)
        timing = Timing(label, (pc() - t0) * 1000)
        if "duration_ms" in answer:
            timing.server_ms.append(float(answer["duration_ms"]))
        for _ in range(reps):
            t0 = pc()
            again = call(client)
            timing.client_ms.append((pc() - t0) * 1000)
            if "duration_ms" in again:
                timing.server_ms.append(float(again["duration_ms"]))
                check(again["total"] == answer["total"], f"{label}: total changed between calls")
        window.stop()
    timing.other_cpu_pct = 100 * window.other_cpu / window.wall
    if "total" in answer:
        timing.total = int(answer["total"])
    return timing, answer


def search_call(body: dict[str, Any]) -> Callable[[httpx.Client], dict[str, Any]]:
    raw = json.dumps(body).encode()

    def call(client: httpx.Client) -> dict[str, Any]:
        r = client.post(SEARCH, content=raw, headers=JSON_HEADERS)
        answer: dict[str, Any] = decode(r.status_code, r.content, 200, f"search {body}")
        return answer

    return call


def search_shapes(layout: Layout) -> list[tuple[str, dict[str, Any], int]]:
    """(label, request body, expected total) of every measured search."""
    q = SEARCH_QUEUE
    return [
        (
            "indexed: queue + state dead",
            {"queue": q, "state": ["dead"], "limit": 50},
            layout.dead_per_queue,
        ),
        (
            "payload_jq: .plan == pro and .amount > 500",
            {"queue": q, "payload_jq": '.plan == "pro" and .amount > 500', "limit": 50},
            expected_jq_total(layout, q),
        ),
        (
            f"payload_contains: user{CONTAINS_USER}@",
            {"queue": q, "payload_contains": f"user{CONTAINS_USER}@", "limit": 50},
            1,
        ),
        (
            "tags: tenant t7 (all queues)",
            {"tags": {"tenant": "t7"}, "limit": 50},
            expected_tenant_total(layout, "t7"),
        ),
    ]


def measure_searches(
    server: Server, layout: Layout, reps: int
) -> tuple[list[Timing], dict[str, dict[str, Any]]]:
    """Time the queue listing and every search shape; return the timings and the request bodies
    (page 2's with its cursor) for EXPLAIN."""
    timings: list[Timing] = []
    bodies: dict[str, dict[str, Any]] = {}

    def listing(client: httpx.Client) -> dict[str, Any]:
        r = client.get(QUEUES)
        answer: dict[str, Any] = decode(r.status_code, r.content, 200, "GET /api/v1/queues")
        return answer

    timing, answer = time_calls(server, "GET /api/v1/queues", reps * 2, listing)
    check(len(answer["queues"]) >= N_QUEUES + 1, "queue listing misses queues")
    timings.append(timing)

    for label, body, expected in search_shapes(layout):
        timing, answer = time_calls(server, label, reps, search_call(body))
        timing.expected = expected
        check(timing.total == expected, f"{label}: total {timing.total}, expected {expected}")
        shown = answer["jobs"]
        check(len(shown) == min(50, expected), f"{label}: page of {len(shown)} jobs")
        check(answer["has_more"] == (expected > 50), f"{label}: has_more {answer['has_more']}")
        timings.append(timing)
        bodies[label] = body
        print(
            f"  {label}: total {timing.total:,}, server {timing.row()['server_ms_median']:.1f} ms",
            flush=True,
        )
        if label.startswith("indexed"):
            check(
                all(j["state"] == "dead" and j["queue"] == SEARCH_QUEUE for j in shown),
                "dead page 1",
            )
            page2 = {**body, "cursor": answer["cursor"]}
            timing2, answer2 = time_calls(
                server, "indexed, page 2 (cursor)", reps, search_call(page2)
            )
            timing2.expected = expected
            shown2 = answer2["jobs"]
            check(timing2.total == expected, f"page 2: total {timing2.total}")
            check(len(shown2) == min(50, expected - 50), f"page 2: {len(shown2)} jobs")
            check(all(j["state"] == "dead" for j in shown2), "page 2: a job that is not dead")
            check(not {j["id"] for j in shown} & {j["id"] for j in shown2}, "pages 1 and 2 overlap")
            timings.append(timing2)
            bodies[timing2.label] = page2
    return timings, bodies


def measure_console(server: Server, reps: int) -> list[Timing]:
    """Time the web console's pages (client time for the whole HTML answer)."""
    q = SEARCH_QUEUE
    with httpx.Client(base_url=server.url, timeout=600) as client:
        dead = client.post(SEARCH, json={"queue": q, "state": ["dead"], "limit": 1}).json()
        job = dead["jobs"][0]
    sig = error_signature(job["last_error"]) or ""
    pages = [
        ("console: dashboard", "/ui/"),
        (f"console: queue {q}", f"/ui/queues/{q}"),
        ("console: failures", "/ui/failures"),
        ("console: job page", f"/ui/jobs/{job['id']}"),
        ("console: jobs, queue + state dead", f"/ui/jobs?queue={q}&state=dead"),
        ("console: jobs, error_signature", "/ui/jobs?" + urlencode({"error_signature": sig})),
    ]
    timings = []
    for label, path in pages:

        def call(client: httpx.Client, path: str = path) -> dict[str, Any]:
            r = client.get(path)
            check(r.status_code == 200, f"{path}: {r.status_code}")
            return {}

        timing, _ = time_calls(server, label, reps, call)
        timings.append(timing)
        median = sorted(timing.client_ms)[len(timing.client_ms) // 2]
        print(f"  {label}: {median:.1f} ms", flush=True)
    return timings


# --- query plans ----------------------------------------------------------------------------------


def plan_lines(
    conn: sqlite3.Connection, sql: str, params: list[object] | tuple[object, ...]
) -> list[str]:
    """EXPLAIN QUERY PLAN as an indented tree."""
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * (depth[node] - 1) + detail)
    return lines


def query_plans(
    server: Server, bodies: dict[str, dict[str, Any]]
) -> dict[str, dict[str, list[str]]]:
    path = server.data_dir / DB_FILE
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plans: dict[str, dict[str, list[str]]] = {}
    try:
        for label, body in bodies.items():
            f = search_filter(SearchRequest(**body))
            plans[label] = {
                "page": plan_lines(conn, *page_sql(f)),
                "count (total)": plan_lines(conn, *count_sql(f)),
            }
        bulk_filter = search_filter(SearchRequest(state=["dead"]))
        where, params = match_clause(BulkSpec(action="retry", filter=bulk_filter))
        plans["bulk retry {state: dead}"] = {
            "count (estimated_total)": plan_lines(conn, *count_sql(bulk_filter)),
            "matching jobs (read once)": plan_lines(
                conn, f"SELECT seq FROM jobs WHERE {where}", tuple(params)
            ),
        }
    finally:
        conn.close()
    return plans


# --- the bulk retry and the concurrent worker -----------------------------------------------------


def worker_loop(
    server: Server,
    stop: threading.Event,
    samples: list[tuple[float, float]],
    failures: list[str],
    limit: int,
) -> None:
    """fetch (timeout 0) + ack on the live queue until `stop` or `limit` round trips; appends
    (start, ms) per round trip."""
    fetch = json.dumps({"queues": [LIVE_QUEUE], "worker_id": "bench-live", "timeout": 0}).encode()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set() and len(samples) < limit:
                t0 = pc()
                r = client.post(FETCH, content=fetch, headers=JSON_HEADERS)
                if r.status_code == 204:
                    failures.append("the live queue ran dry")
                    return
                job = decode(r.status_code, r.content, 200, "live fetch")
                ack = b'{"result":null,"worker_id":"bench-live","attempt":%d}' % job["attempt"]
                a = client.post(f"/api/v1/ack/{job['job_id']}", content=ack, headers=JSON_HEADERS)
                check(
                    decode(a.status_code, a.content, 200, "live ack")["status"] == "completed",
                    "ack",
                )
                samples.append((t0, (pc() - t0) * 1000))
    except Exception as exc:
        failures.append(repr(exc))


def latency(samples: list[float]) -> dict[str, float]:
    return {
        "samples": len(samples),
        "p50_ms": percentile(samples, 0.5),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples),
    }


def run_bulk(server: Server, layout: Layout, baseline_samples: int) -> dict[str, Any]:
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the worker thread gets the GIL promptly when its answer lands
    try:
        base: list[tuple[float, float]] = []
        failures: list[str] = []
        worker_loop(server, threading.Event(), base, failures, baseline_samples)
        check(not failures, f"baseline worker: {failures}")

        stop = threading.Event()
        samples: list[tuple[float, float]] = []
        thread = threading.Thread(
            target=worker_loop, args=(server, stop, samples, failures, 10**9), daemon=True
        )
        body = json.dumps({"action": "retry", "filter": {"state": ["dead"]}}).encode()
        polls = 0
        with httpx.Client(base_url=server.url, timeout=600) as client:
            thread.start()
            time.sleep(0.3)  # the worker is in its stride before the bulk starts
            window = Window(server).start()
            t0 = pc()
            r = client.post(BULK, content=body, headers=JSON_HEADERS)
            t_answer = pc() - t0
            check(r.status_code in (200, 202), f"bulk: HTTP {r.status_code}: {r.text[:300]}")
            if r.status_code == 202:
                accepted = decode(r.status_code, r.content, 202, "bulk")
                check(accepted["estimated_total"] == layout.dead, f"bulk estimate: {accepted}")
                while True:
                    p = client.get(accepted["progress_url"])
                    polls += 1
                    status = decode(p.status_code, p.content, 200, "bulk progress")
                    if status["status"] != "running":
                        break
                    time.sleep(0.05)
                wall = pc() - t0
                check(status["status"] == "completed", f"bulk ended {status}")
                affected, skipped = status["affected"], status["skipped"]
                server_ms = None
            else:
                wall = t_answer
                status = decode(r.status_code, r.content, 200, "bulk")
                affected, skipped, server_ms = (
                    status["affected"],
                    status["skipped"],
                    status["duration_ms"],
                )
            window.stop()
            time.sleep(0.3)
            stop.set()
            thread.join(timeout=60)
            check(not failures, f"live worker: {failures}")
            check(
                affected == layout.dead, f"bulk retry affected {affected}, expected {layout.dead}"
            )
            check(skipped == 0, f"bulk retry skipped {skipped}")
            expect_layout(client, layout, dead_retried=True)
            dead_left = sum(q["counts"]["dead"] for q in queue_listing(client).values())
            check(dead_left == 0, f"{dead_left} dead jobs left after the bulk retry")
    finally:
        sys.setswitchinterval(old_interval)
    # Only the round trips that started while the bulk ran (from its POST to "completed").
    during = [ms for start, ms in samples if t0 <= start <= t0 + wall]
    check(bool(during), "no worker round trip completed while the bulk ran")
    if len(during) < 100:
        print(f"  note: only {len(during)} worker round trips during the bulk: p99 is rough")
    return {
        "http_status": r.status_code,
        "answer_ms": t_answer * 1000,
        "wall_s": wall,
        "server_duration_ms": server_ms,
        "affected": affected,
        "jobs_per_s": affected / wall,
        "progress_polls": polls,
        "server_cpu_pct": 100 * window.srv_cpu / window.wall,
        "client_cpu_pct": 100 * window.cli_cpu / window.wall,
        "other_cpu_pct": 100 * window.other_cpu / window.wall,
        "worker_before": latency([ms for _, ms in base]),
        "worker_during": latency(during),
    }


# --- reporting ------------------------------------------------------------------------------------


def print_report(
    steps: list[Step],
    timings: list[Timing],
    bulk: dict[str, Any],
    plans: dict[str, dict[str, list[str]]],
    reps: int,
) -> None:
    print("\nSetup")
    width = max(len(s.label) for s in steps)
    print(
        f"{'step':<{width}}  {'jobs':>9}  {'wall s':>7}  {'jobs/s':>8}"
        f"  {'srv CPU':>7}  {'cli CPU':>7}  {'other':>5}"
    )
    for s in steps:
        r = s.row()
        print(
            f"{s.label:<{width}}  {s.jobs:>9,}  {r['wall_s']:>7.1f}  {r['jobs_per_s']:>8,.0f}"
            f"  {r['server_cpu_pct']:>6.0f}%  {r['client_cpu_pct']:>6.0f}%"
            f"  {r['other_cpu_pct']:>4.0f}%"
        )

    print(
        f"\nReads: first call, then median (min-max) of {reps} calls ({reps * 2} for the listing)"
    )
    width = max(len(t.label) for t in timings)
    head = (
        f"{'request':<{width}}  {'1st cli ms':>10}  {'cli ms':>8}  {'cli min-max':>15}"
        f"  {'1st srv ms':>10}  {'srv ms':>8}  {'srv min-max':>15}  {'total':>8}  {'other':>5}"
    )
    print(head)
    print("-" * len(head))
    for t in timings:
        r = t.row()
        line = (
            f"{t.label:<{width}}  {fmt(t.first_ms, 'ms'):>10}"
            f"  {fmt(r['client_ms_median'], 'ms'):>8}"
            f"  {fmt(r['client_ms_min'], 'ms') + '-' + fmt(r['client_ms_max'], 'ms'):>15}"
        )
        if "server_ms_median" in r:
            spread = fmt(r["server_ms_min"], "ms") + "-" + fmt(r["server_ms_max"], "ms")
            line += (
                f"  {fmt(r['server_ms_first'], 'ms'):>10}  {fmt(r['server_ms_median'], 'ms'):>8}"
                f"  {spread:>15}  {t.total:>8,}"
            )
        else:
            line += f"  {'':>10}  {'':>8}  {'':>15}  {'':>8}"
        print(f"{line}  {t.other_cpu_pct:>4.0f}%")
    print(
        "cli = client-observed latency (sync httpx.Client, keep-alive);"
        " srv = the answer's duration_ms"
    )

    b, before, during = bulk, bulk["worker_before"], bulk["worker_during"]
    print(
        f'\nBulk retry of {b["affected"]:,} dead jobs ({{"state": ["dead"]}}): '
        f"HTTP {b['http_status']} in "
        f"{b['answer_ms']:.0f} ms, done after {b['wall_s']:.2f} s -> {b['jobs_per_s']:,.0f} jobs/s "
        f"({b['progress_polls']} progress polls); server CPU {b['server_cpu_pct']:.0f}%, "
        f"client {b['client_cpu_pct']:.0f}%, other {b['other_cpu_pct']:.0f}%"
    )
    print(
        f"Worker on '{LIVE_QUEUE}' (fetch timeout 0 + ack, 1 sync client): "
        f"before the bulk p50 {before['p50_ms']:.2f} ms / p99 {before['p99_ms']:.2f} ms "
        f"({before['samples']} round trips); during it p50 {during['p50_ms']:.2f} ms / "
        f"p99 {during['p99_ms']:.2f} ms / max {during['max_ms']:.0f} ms"
        f" ({during['samples']} round trips)"
    )

    print("\nQuery plans (EXPLAIN QUERY PLAN on the benchmark's database, read-only)")
    for label, queries in plans.items():
        print(f"  {label}")
        for which, lines in queries.items():
            print(f"    {which}:")
            for line in lines:
                print(f"      {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.manage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="100,000 jobs, 3 reps: a smoke test")
    parser.add_argument("--jobs", type=int, help="jobs across the 10 queues (default 1,000,000)")
    parser.add_argument("--reps", type=int, help="timed calls per read after the first (default 7)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG", help="extra server argument"
    )
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the data directory and log")
    args = parser.parse_args(argv)
    jobs = args.jobs or (100_000 if args.quick else 1_000_000)
    reps = args.reps or (3 if args.quick else 7)
    check(jobs >= 10 * N_QUEUES * 100, "--jobs must be at least 100,000")
    layout = make_layout(jobs)
    live_jobs = 10_000 if args.quick else 30_000
    args.data_root.mkdir(parents=True, exist_ok=True)
    meta = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "data_root_fs": filesystem_of(args.data_root),
        "server_args": args.server_arg,
        "jobs": layout.jobs,
        "queues": N_QUEUES,
        "per_queue": {
            "completed": layout.completed_per_queue,
            "dead": layout.dead_per_queue,
            "pending": layout.pending_per_queue,
        },
        "live_queue_jobs": live_jobs,
        "reps": reps,
    }
    print(
        f"Jobbie management bench: Python {meta['python']}, SQLite {meta['sqlite']}, "
        f"data under {args.data_root} ({meta['data_root_fs']}), "
        f"server args {args.server_arg or '(defaults: durability full)'}\n"
        f"{layout.jobs:,} jobs in {N_QUEUES} queues, per queue "
        f"{layout.completed_per_queue:,} completed, "
        f"{layout.dead_per_queue:,} dead, {layout.pending_per_queue:,} pending; "
        f"+{live_jobs:,} pending on '{LIVE_QUEUE}' for the concurrent worker",
        flush=True,
    )
    server = Server(args.data_root, args.server_arg, args.keep)
    t_start = pc()
    failed = False
    try:
        server.start()
        steps = setup(server, layout, live_jobs)
        timings, bodies = measure_searches(server, layout, reps)
        timings += measure_console(server, reps)
        plans = query_plans(server, bodies)
        bulk = run_bulk(server, layout, 300)
        server.ensure_alive()
        meta["data_dir_mib"] = server.data_mib()
        meta["server_rss_mib"] = server.memory_mib()[0]
    except (BenchError, httpx.HTTPError, OSError, sqlite3.Error, ValueError, KeyError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        failed = True
    finally:
        server.stop()
        if failed:
            print("--- server log (tail) ---\n" + server.log_tail(), file=sys.stderr)
        issues = server.issues()
        server.cleanup()
    if failed:
        return 1
    print(
        f"\ntotal {pc() - t_start:.0f} s; data dir {meta['data_dir_mib']:.0f} MiB,"
        f" server RSS {meta['server_rss_mib']:.0f} MiB"
    )
    print_report(steps, timings, bulk, plans, reps)
    for issue in issues:
        print(f"WARNING: {issue}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "meta": meta,
            "setup": [s.row() for s in steps],
            "reads": [t.row() for t in timings],
            "bulk_retry": bulk,
            "plans": plans,
            "issues": issues,
        }
        args.json.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the management API and the web console on a big store:
`python -m bench.manage [--quick] [--jobs N] [--reps N] [--json PATH]`.

1. build the store in-process through the Store protocol (`bench/manage_data.py`: batched
   inserts, fetch 1000 + ack_batch, fetch 1000 + fail_batch; no HTTP): `--jobs` jobs (default
   1,000,000) in 10 queues, per queue 40% completed, 10% dead (three kinds of error), 50%
   pending (one in seven at priority high), `created_at` spread over three hours;
2. start a `jobbie server` (default durability full) on it and check every queue's counts;
3. time the console's pages (dashboard, a queue, failures, a job, the jobs page with indexed
   filters: queue, state, priority, a created_at range, error_signature) and the API calls
   behind them, and the search API with indexed and scanning filters (payload_jq,
   payload_contains, tags: these run under the server's search time limit). Server time is
   the access log's `ms` for the request (the whole request inside the server, rendering
   included), found by the request id the bench sends; the client's latency is shown beside;
4. EXPLAIN QUERY PLAN of the statements serving each page, recorded by running the store's
   own read functions on the benchmark's database (read-only), and of each search;
5. a bulk retry of every dead job (202 + progress polling), while one worker fetches and acks
   on another queue; its p50/p99 are compared with the same loop before the bulk.

Every step checks its result (counts per state, search totals against the expected numbers,
capped at 10,000, affected == dead, no dead job left) and the script exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from bench.manage_data import (
    ERRORS,
    LIVE_QUEUE,
    N_QUEUES,
    Built,
    Layout,
    build_store,
    expected_error_kind,
    expected_high_pending,
    expected_jq_total,
    expected_tenant_total,
    make_layout,
)
from bench.run import (
    FETCH,
    JSON_HEADERS,
    QUEUES,
    BenchError,
    Server,
    Window,
    check,
    decode,
    filesystem_of,
    fmt,
    pc,
    percentile,
)
from jobbie.models import SearchRequest
from jobbie.store.console import FAILURE_GROUPS_LIMIT
from jobbie.store.params import BulkSpec
from jobbie.store.search import TOTAL_CAP, search_filter
from jobbie.store.signature import error_signature
from jobbie.store.sqlite import console, queries
from jobbie.store.sqlite.bulk import match_clause
from jobbie.store.sqlite.search_sql import count_sql, page_sql
from jobbie.store.sqlite.store import DB_FILE

SEARCH = "/api/v1/jobs/search"
BULK = "/api/v1/jobs/bulk"
CONTAINS_USER = 12345
SEARCH_QUEUE = f"q{CONTAINS_USER % N_QUEUES}"  # the queue holding user 12345
TARGET_MS = 150.0


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


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


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Timing:
    """The first call and the repetitions of one request: client latency, and server time
    from the access log (by request id)."""

    label: str
    kind: str  # "page", "api" or "search"
    rids: list[str] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    total: int | None = None
    capped: bool = False
    timed_out: bool = False
    expected: int | None = None
    other_cpu_pct: float = 0.0

    def srv_median(self) -> float:
        return statistics.median(self.server_ms[1:] or self.server_ms)

    def row(self) -> dict[str, Any]:
        reps = self.server_ms[1:] or self.server_ms
        return {
            "label": self.label,
            "kind": self.kind,
            "server_ms_first": self.server_ms[0],
            "server_ms_median": statistics.median(reps),
            "server_ms_min": min(reps),
            "server_ms_max": max(reps),
            "client_ms_median": statistics.median(self.client_ms[1:] or self.client_ms),
            "total": self.total,
            "total_capped": self.capped,
            "timed_out": self.timed_out,
            "expected_total": self.expected,
            "other_cpu_pct": self.other_cpu_pct,
        }


_rid_counter = iter(range(10**9))


def time_calls(
    server: Server,
    label: str,
    kind: str,
    reps: int,
    call: Callable[[httpx.Client, dict[str, str]], dict[str, Any]],
) -> tuple[Timing, dict[str, Any]]:
    """One first call, then `reps` more; `call(client, headers)` returns the decoded answer
    (an empty dict for HTML). Server times are filled in later by `read_server_times`."""
    timing = Timing(label, kind)
    answer: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=600) as client:
        window = Window(server).start()
        for n in range(reps + 1):
            rid = f"bench-{next(_rid_counter)}"
            t0 = pc()
            got = call(client, {"x-request-id": rid})
            timing.client_ms.append((pc() - t0) * 1000)
            timing.rids.append(rid)
            if n == 0:
                answer = got
            elif "total" in got:
                timing.timed_out = timing.timed_out or bool(got["timed_out"])
                # A search the time limit stopped counts what it found by then: it varies.
                if not (got["timed_out"] or answer["timed_out"]):
                    check(got["total"] == answer["total"], f"{label}: total changed")
        window.stop()
    timing.other_cpu_pct = 100 * window.other_cpu / window.wall
    if "total" in answer:
        timing.total = int(answer["total"])
        timing.capped = bool(answer["total_capped"])
        timing.timed_out = timing.timed_out or bool(answer["timed_out"])
    return timing, answer


def read_server_times(server: Server, timings: list[Timing]) -> None:
    """Each request's `ms` from the server's access log (written within 50 ms)."""
    time.sleep(0.3)
    by_rid: dict[str, float] = {}
    for line in server.log_lines():
        if '"jobbie.access"' in line and '"bench-' in line:
            entry = json.loads(line)
            by_rid[entry["request_id"]] = float(entry["ms"])
    for t in timings:
        missing = [rid for rid in t.rids if rid not in by_rid]
        check(not missing, f"{t.label}: no access-log line for {missing[:3]}")
        t.server_ms = [by_rid[rid] for rid in t.rids]


def search_call(body: dict[str, Any]) -> Callable[[httpx.Client, dict[str, str]], dict[str, Any]]:
    raw = json.dumps(body).encode()

    def call(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
        r = client.post(SEARCH, content=raw, headers={**JSON_HEADERS, **headers})
        answer: dict[str, Any] = decode(r.status_code, r.content, 200, f"search {body}")
        return answer

    return call


def get_call(
    path: str, json_answer: bool
) -> Callable[[httpx.Client, dict[str, str]], dict[str, Any]]:
    def call(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
        r = client.get(path, headers=headers)
        check(r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:200]}")
        return {} if not json_answer else {"_": r.json()}

    return call


@dataclass(frozen=True)
class Shape:
    """One measured search: its body, the expected total (None: not checked) and whether
    only indexed filters are in it (the 150 ms target applies to those)."""

    label: str
    body: dict[str, Any]
    expected: int | None
    indexed: bool


def search_shapes(layout: Layout, built: Built) -> list[Shape]:
    q = SEARCH_QUEUE
    lo, hi = built.completed_window
    signature = error_signature(ERRORS[0].format(n=1)) or ""
    return [
        Shape("queue + state dead", {"queue": q, "state": ["dead"]}, layout.dead_per_queue, True),
        Shape(
            "queue + state pending + priority high",
            {"queue": q, "state": ["pending"], "priority": "high"},
            expected_high_pending(layout, q),
            True,
        ),
        Shape(
            "queue + state completed + created range",
            {
                "queue": q,
                "state": ["completed"],
                "created_after": rfc3339(lo),
                "created_before": rfc3339(hi),
            },
            None,
            True,
        ),
        Shape(
            "error_signature + state dead/retrying",
            {"error_signature": signature, "state": ["dead", "retrying"]},
            expected_error_kind(layout, 0),
            True,
        ),
        Shape("state dead (all queues)", {"state": ["dead"]}, layout.dead, True),
        Shape("no filter (newest first)", {}, None, True),
        Shape(
            "payload_jq: .plan == pro and .amount > 500",
            {"queue": q, "payload_jq": '.plan == "pro" and .amount > 500'},
            expected_jq_total(layout, q),
            False,
        ),
        Shape(
            f"payload_contains: user{CONTAINS_USER}@",
            {"queue": q, "payload_contains": f"user{CONTAINS_USER}@"},
            1,
            False,
        ),
        Shape(
            "tags: tenant t7 (all queues)",
            {"tags": {"tenant": "t7"}},
            expected_tenant_total(layout, "t7"),
            False,
        ),
    ]


def check_total(label: str, timing: Timing, expected: int | None) -> None:
    timing.expected = expected
    if expected is None or timing.total is None:
        return
    if timing.timed_out:
        check(timing.total <= expected, f"{label}: timed out with total {timing.total}")
        return
    check(
        (timing.total, timing.capped) == (min(expected, TOTAL_CAP), expected > TOTAL_CAP),
        f"{label}: total {timing.total} (capped {timing.capped}), expected {expected}",
    )


def measure_searches(
    server: Server, layout: Layout, built: Built, reps: int
) -> tuple[list[Timing], dict[str, dict[str, Any]]]:
    """Time every search shape (and page 2 of the first); return the timings and the bodies
    for EXPLAIN."""
    timings: list[Timing] = []
    bodies: dict[str, dict[str, Any]] = {}
    for shape in search_shapes(layout, built):
        label = ("search: " if shape.indexed else "search (scan): ") + shape.label
        timing, answer = time_calls(
            server, label, "search" if shape.indexed else "scan", reps, search_call(shape.body)
        )
        check_total(label, timing, shape.expected)
        timings.append(timing)
        bodies[label] = shape.body
        note = " (capped)" if timing.capped else " (timed out)" if timing.timed_out else ""
        print(f"  {label}: total {timing.total:,}{note}", flush=True)
        if shape.label == "queue + state dead":
            check(all(j["state"] == "dead" for j in answer["jobs"]), "dead page 1")
            page2 = {**shape.body, "cursor": answer["cursor"]}
            timing2, answer2 = time_calls(
                server, label + ", page 2", "search", reps, search_call(page2)
            )
            check_total(label, timing2, shape.expected)
            check(
                not {j["id"] for j in answer["jobs"]} & {j["id"] for j in answer2["jobs"]},
                "pages 1 and 2 overlap",
            )
            timings.append(timing2)
            bodies[timing2.label] = page2
    return timings, bodies


def console_paths(
    server: Server, layout: Layout, built: Built
) -> tuple[list[tuple[str, str, str]], str]:
    """(label, kind, path) of every page and API read timed, and a dead job's id."""
    q = SEARCH_QUEUE
    with httpx.Client(base_url=server.url, timeout=600) as client:
        dead = client.post(SEARCH, json={"queue": q, "state": ["dead"], "limit": 1}).json()
    job = dead["jobs"][0]
    sig = error_signature(job["last_error"]) or ""
    lo, hi = built.completed_window
    pages = [
        ("API: GET /api/v1/queues", "api", "/api/v1/queues"),
        (f"API: GET /api/v1/queues/{q}", "api", f"/api/v1/queues/{q}"),
        ("page: dashboard", "page", "/ui/"),
        (f"page: queue {q}", "page", f"/ui/queues/{q}"),
        ("page: failures", "page", "/ui/failures"),
        ("page: job", "page", f"/ui/jobs/{job['id']}"),
        ("page: jobs, queue + state dead", "page", f"/ui/jobs?queue={q}&state=dead"),
        (
            "page: jobs, queue + pending + priority high",
            "page",
            f"/ui/jobs?queue={q}&state=pending&priority=high",
        ),
        (
            "page: jobs, queue + completed + created range",
            "page",
            "/ui/jobs?"
            + urlencode(
                {
                    "queue": q,
                    "state": "completed",
                    "created_after": rfc3339(lo),
                    "created_before": rfc3339(hi),
                }
            ),
        ),
        (
            "page: jobs, error_signature (failures link)",
            "page",
            "/ui/jobs?"
            + urlencode([("error_signature", sig), ("state", "dead"), ("state", "retrying")]),
        ),
        ("page: jobs, state dead", "page", "/ui/jobs?state=dead"),
        ("page: jobs, no filter", "page", "/ui/jobs"),
    ]
    return pages, job["id"]


def measure_console(server: Server, pages: list[tuple[str, str, str]], reps: int) -> list[Timing]:
    timings = []
    for label, kind, path in pages:
        timing, _ = time_calls(server, label, kind, reps, get_call(path, kind == "api"))
        timings.append(timing)
        print(f"  {label}: client {statistics.median(timing.client_ms):.1f} ms", flush=True)
    return timings


# --- query plans ----------------------------------------------------------------------------------


class RecordingConnection(sqlite3.Connection):
    """Remembers every statement run through `execute`, with its parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.statements.append((sql, parameters))
        return super().execute(sql, parameters)


def plan_lines(conn: sqlite3.Connection, sql: str, params: Any) -> list[str]:
    """EXPLAIN QUERY PLAN as an indented tree."""
    rows = sqlite3.Connection.execute(conn, "EXPLAIN QUERY PLAN " + sql, params).fetchall()
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * (depth[node] - 1) + detail)
    return lines


def query_plans(
    server: Server, bodies: dict[str, dict[str, Any]], job_id: str
) -> dict[str, dict[str, list[str]]]:
    """The plans of the statements the pages' store reads run, and of each search."""
    path = server.data_dir / DB_FILE
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, factory=RecordingConnection)
    conn.row_factory = sqlite3.Row
    assert isinstance(conn, RecordingConnection)
    now = int(time.time() * 1000)
    reads: dict[str, Callable[[sqlite3.Connection], object]] = {
        "dashboard, queue page: every queue's counts (list_queues)": lambda c: queries.list_queues(
            c, now
        ),
        "queue page: one queue (get_queue)": lambda c: queries.get_queue(c, SEARCH_QUEUE, now),
        "dashboard: workers": queries.list_workers,
        "dashboard, failures page: failure groups": lambda c: console.failure_groups(
            c, FAILURE_GROUPS_LIMIT
        ),
        "dashboard, queue page: history (last day)": lambda c: console.read_history(
            c, None, now - 86_400_000
        ),
        "job page: the job, its errors and events": lambda c: queries.get_job(c, job_id),
    }
    plans: dict[str, dict[str, list[str]]] = {}
    try:
        for label, read in reads.items():
            conn.statements.clear()
            read(conn)
            plans[label] = {
                " ".join(sql.split())[:90]: plan_lines(conn, sql, params)
                for sql, params in conn.statements
            }
        for label, body in bodies.items():
            f = search_filter(msgspec.convert(body, SearchRequest))
            plans[label] = {
                "page": plan_lines(conn, *page_sql(f)),
                f"count (total, up to {TOTAL_CAP + 1:,})": plan_lines(conn, *count_sql(f)),
            }
        bulk_filter = search_filter(SearchRequest(state=["dead"]))
        where, params = match_clause(BulkSpec(action="retry", filter=bulk_filter))
        plans["bulk retry {state: dead}"] = {
            "matching jobs (count, then read once)": plan_lines(
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
# --- reporting ------------------------------------------------------------------------------------


def print_report(
    built: Built,
    timings: list[Timing],
    bulk: dict[str, Any],
    plans: dict[str, dict[str, list[str]]],
    reps: int,
) -> None:
    print("\nSetup (in-process, through the Store protocol; durability fast while loading)")
    for label, jobs, wall, cpu in built.steps:
        rate = jobs / wall
        print(
            f"  {label:<28} {jobs:>9,} jobs  {wall:>6.1f} s  {rate:>8,.0f} jobs/s  CPU {cpu:.1f} s"
        )

    print(
        "\nReads: srv = the access log's time for the request (cli: the client's latency);"
        f" first call, then median (min-max) of {reps}"
    )
    width = max(len(t.label) for t in timings)
    head = (
        f"{'request':<{width}}  {'1st srv':>8}  {'srv ms':>8}  {'srv min-max':>15}"
        f"  {'cli ms':>8}  {'total':>8}  {'target':>6}  {'other':>5}"
    )
    print(head)
    print("-" * len(head))
    for t in timings:
        r = t.row()
        spread = fmt(r["server_ms_min"], "ms") + "-" + fmt(r["server_ms_max"], "ms")
        total = ""
        if t.total is not None:
            total = f"{t.total:,}" + ("+" if t.capped else "") + (" T/O" if t.timed_out else "")
        target = (
            "" if t.kind == "scan" else ("ok" if r["server_ms_median"] <= TARGET_MS else "MISS")
        )
        print(
            f"{t.label:<{width}}  {fmt(r['server_ms_first'], 'ms'):>8}"
            f"  {fmt(r['server_ms_median'], 'ms'):>8}"
            f"  {spread:>15}  {fmt(r['client_ms_median'], 'ms'):>8}  {total:>8}  {target:>6}"
            f"  {t.other_cpu_pct:>4.0f}%"
        )
    print(
        f"total: N+ = more than N match (counting stops at {TOTAL_CAP:,});"
        " T/O = hit the search time limit"
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
    for label, queries_ in plans.items():
        print(f"  {label}")
        for which, lines in queries_.items():
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
        built = build_store(server.data_dir, layout, live_jobs)
        server.start()
        with httpx.Client(base_url=server.url, timeout=300) as client:
            expect_layout(client, layout, dead_retried=False)
        pages, job_id = console_paths(server, layout, built)
        timings = measure_console(server, pages, reps)
        search_timings, bodies = measure_searches(server, layout, built, reps)
        timings += search_timings
        read_server_times(server, timings)
        plans = query_plans(server, bodies, job_id)
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
    print_report(built, timings, bulk, plans, reps)
    for issue in issues:
        print(f"WARNING: {issue}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "meta": meta,
            "setup": [
                {"label": label, "jobs": n, "wall_s": wall, "cpu_s": cpu}
                for label, n, wall, cpu in built.steps
            ],
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

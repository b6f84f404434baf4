"""What users run: the shipped `Client`, `AsyncClient` and `Worker` against a real server.

Workloads added to `python -m bench.run` (and, with Huey beside them, `bench.compare`):

  U1   `Client.enqueue` in one thread vs a raw `http.client` loop (interleaved quarters)
  U16  `AsyncClient.enqueue` from 16 tasks vs 16 raw asyncio connections (interleaved halves)
  UB   `Client.enqueue_batch` (1,000 dicts per call) vs raw pre-encoded batch POSTs
  W8   the shipped `Worker`, sync no-op handler, concurrency 8, draining 10,000 jobs
  W64  the same with an async no-op handler and concurrency 64
  WD   idle pickup through the shipped `Worker`: enqueue call start -> handler start
  C8n  raw protocol: 8 unbatched loops using ack-and-fetch-next (one round trip per job)

Client CPU per request is `getrusage` of this process over the shipped client's own calls.

`python -m bench.clients cpu [--n N]` measures the client CPU per enqueue of each candidate HTTP
machinery (stdlib http.client, urllib3, httpx, aiohttp, and the shipped clients) against one
fresh server: the measurement the client's HTTP libraries were chosen by.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from bench import run
from bench.run import (
    ENQUEUE,
    ENQUEUE_BATCH,
    FETCH,
    JSON_HEADERS,
    BenchError,
    Config,
    RawConnection,
    RunResult,
    Server,
    Window,
    Workload,
    batch_body,
    check,
    decode,
    enqueue_body,
    expect_counts,
    expect_unique_ids,
    fetch_body,
    load_jobs,
    percentile,
    warm_up,
)

pc = time.perf_counter
SHIPPED = "the shipped jobbie client"


def cpu_seconds() -> float:
    """User + system CPU of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drain_size(cfg: Config) -> int:
    """W8/W64 drain 10,000 jobs (fewer with --quick)."""
    return min(10_000, cfg.n_c8b)


class Phases:
    """Wall time and client CPU summed over several timed phases of one kind."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.ops = 0

    def time(self, ops: int, fn: Callable[[], None]) -> None:
        c0, t0 = cpu_seconds(), pc()
        fn()
        self.wall += pc() - t0
        self.cpu += cpu_seconds() - c0
        self.ops += ops

    async def atime(self, ops: int, fn: Callable[[], Awaitable[None]]) -> None:
        c0, t0 = cpu_seconds(), pc()
        await fn()
        self.wall += pc() - t0
        self.cpu += cpu_seconds() - c0
        self.ops += ops

    @property
    def rate(self) -> float:
        return self.ops / self.wall

    @property
    def us_per_op(self) -> float:
        return self.cpu / self.ops * 1e6


# --- U1: Client.enqueue vs a raw http.client loop -------------------------------------------------


def run_u1(cfg: Config, server: Server) -> RunResult:
    from jobbie import Client

    n = cfg.n_a1
    quarter = max(1, n // 4)
    warm_up(server)
    raw, shipped = Phases(), Phases()
    raw_ids: list[str] = []
    ids: list[str] = []
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)

    def raw_loop(start: int) -> None:
        conn.close()  # a fresh connection: the last one may have idled past the keep-alive
        for i in range(start, start + quarter):
            conn.request("POST", ENQUEUE, enqueue_body("u1raw", i), JSON_HEADERS)
            resp = conn.getresponse()
            raw_ids.append(decode(resp.status, resp.read(), 201, "raw enqueue")["job_id"])

    with Client(server.url, timeout=60) as client:
        client.enqueue("warmup", {"i": 0})
        raw_loop(0)  # both connections are open and warm before the clock starts

        def shipped_loop() -> None:
            for i in range(quarter):
                ids.append(client.enqueue("u1", {"i": i}).job_id)

        for q in range(4):  # interleaved, so drift hits both alike
            raw.time(quarter, partial(raw_loop, (q + 1) * quarter))
            shipped.time(quarter, shipped_loop)
    conn.close()
    expect_unique_ids(ids, 4 * quarter, "U1 Client.enqueue")
    expect_counts(server, "u1", pending=4 * quarter)
    return RunResult(
        {
            "U1 Client.enqueue, 1 thread": (shipped.rate, "jobs/s"),
            "U1 raw http.client loop": (raw.rate, "jobs/s"),
            "U1 Client/raw": (shipped.rate / raw.rate, "x"),
            "U1 Client CPU/request": (shipped.us_per_op, "µs"),
            "U1 http.client CPU/request": (raw.us_per_op, "µs"),
        },
        note=f"{SHIPPED} (Client, http.client pool) vs a bare http.client connection, one thread",
    )


# --- U16: AsyncClient.enqueue x16 vs 16 raw connections ------------------------------------------


async def _u16(server: Server, half: int) -> tuple[Phases, Phases, list[str], Window]:
    from jobbie import AsyncClient

    conc = 16
    raw, shipped = Phases(), Phases()
    ids: list[str] = []
    # On several servers, both sides spread their 16 producers round-robin across them.
    targets = run.spread_over(server, conc)
    raws = [RawConnection(s.host, s.port) for s in targets]
    async with contextlib.AsyncExitStack() as stack:
        by_url = {
            s.url: await stack.enter_async_context(AsyncClient(s.url, timeout=60))
            for s in server.group
        }
        shipped_clients = [by_url[s.url] for s in targets]
        for i, conn in enumerate(raws):  # every connection open before the clock starts
            decode(*(await conn.post(ENQUEUE, enqueue_body("warmup", i))), 201, "warm-up")
        await asyncio.gather(*(c.enqueue("warmup", i) for i, c in enumerate(shipped_clients)))

        async def raw_round(base: int) -> None:
            numbers = iter(range(base, base + half))
            for conn in raws:  # reconnect lazily: they may have idled past the keep-alive
                await conn.aclose()

            async def producer(conn: RawConnection) -> None:
                for i in numbers:
                    decode(*(await conn.post(ENQUEUE, enqueue_body("u16raw", i))), 201, "enq")

            await asyncio.gather(*(producer(c) for c in raws))

        async def shipped_round(base: int) -> None:
            numbers = iter(range(base, base + half))

            async def producer(client: AsyncClient) -> None:
                for i in numbers:
                    ids.append((await client.enqueue("u16", {"i": i})).job_id)

            await asyncio.gather(*(producer(c) for c in shipped_clients))

        # The server's (and PostgreSQL's) cost per job, over both sides' enqueues.
        window = Window(server).start()
        for r in range(2):
            await raw.atime(half, partial(raw_round, r * half))
            await shipped.atime(half, partial(shipped_round, r * half))
        window.stop()
    for conn in raws:
        await conn.aclose()
    return raw, shipped, ids, window


def run_u16(cfg: Config, server: Server) -> RunResult:
    half = max(1, cfg.n_a16 // 2)
    warm_up(server)
    raw, shipped, ids, window = asyncio.run(_u16(server, half))
    expect_unique_ids(ids, 2 * half, "U16 AsyncClient.enqueue")
    expect_counts(server, "u16", pending=2 * half)
    return RunResult(
        {
            "U16 AsyncClient.enqueue, 16 tasks": (shipped.rate, "jobs/s"),
            "U16 raw asyncio, 16 connections": (raw.rate, "jobs/s"),
            "U16 AsyncClient/raw": (shipped.rate / raw.rate, "x"),
            "U16 AsyncClient CPU/request": (shipped.us_per_op, "µs"),
        },
        4 * half,
        window,
        note=f"{SHIPPED} (AsyncClient, aiohttp) vs bench.run's raw asyncio client, 1 loop; "
        "the CPU window spans both sides' enqueues",
    )


# --- UB: Client.enqueue_batch vs raw batch POSTs --------------------------------------------------


def run_ub(cfg: Config, server: Server) -> RunResult:
    from jobbie import Client

    per_call = 1000
    calls = max(2, cfg.n_b // per_call // 2)
    warm_up(server)
    raw, shipped = Phases(), Phases()
    bodies = [batch_body("ubraw", c * per_call, per_call) for c in range(calls)]
    ids: list[str] = []
    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
    with Client(server.url, timeout=120) as client:
        client.enqueue("warmup", None)

        def raw_call(body: bytes) -> None:
            conn.close()  # as in U1: never a connection the server may have timed out
            conn.request("POST", ENQUEUE_BATCH, body, JSON_HEADERS)
            resp = conn.getresponse()
            got = decode(resp.status, resp.read(), 201, "raw batch")["job_ids"]
            check(len(got) == per_call, "raw batch: wrong count")

        def shipped_call(c: int) -> None:
            jobs = [{"queue": "ub", "payload": {"i": i}} for i in range(c, c + per_call)]
            ids.extend(client.enqueue_batch(jobs).job_ids)  # type: ignore[arg-type]

        for c in range(calls):
            raw.time(per_call, partial(raw_call, bodies[c]))
            shipped.time(per_call, partial(shipped_call, c * per_call))
    conn.close()
    expect_unique_ids(ids, calls * per_call, "UB")
    expect_counts(server, "ub", pending=calls * per_call)
    return RunResult(
        {
            "UB Client.enqueue_batch (1000/call)": (shipped.rate, "jobs/s"),
            "UB raw batch POST (1000/call)": (raw.rate, "jobs/s"),
            "UB Client/raw": (shipped.rate / raw.rate, "x"),
        },
        note=f"{SHIPPED} (Client) building 1,000 dicts per call vs pre-encoded bodies",
    )


# --- W8 / W64: the shipped Worker draining ------------------------------------------------------


def _worker_drain(
    cfg: Config, server: Server, key: str, conc: int, async_handler: bool
) -> RunResult:
    from jobbie import Job, JobContext, Worker

    n = drain_size(cfg)
    queue = key.lower()
    ids = asyncio.run(load_jobs(server, queue, 0, n, 1000, 2))
    expect_unique_ids(ids, n, f"{key} pre-enqueue")

    async def anoop(job: Job, ctx: JobContext) -> None:
        return None

    # On several servers: one Worker per server, the concurrency split between them.
    group = server.group
    workers = [Worker(s.url, queues=[queue], concurrency=max(1, conc // len(group))) for s in group]
    for worker in workers:
        if async_handler:
            worker.register(queue, anoop)
        else:
            worker.register(queue, lambda job, ctx: None)

    import aiohttp  # noqa: F401 - imported before the clock starts, as a running app has it

    def completed() -> int:
        return sum(w.stats.completed for w in workers)

    async def main() -> Window:
        window = Window(server).start()
        tasks = [asyncio.create_task(w.arun(install_signal_handlers=False)) for w in workers]
        while completed() < n:
            for task in tasks:
                if task.done():
                    await task
                    raise BenchError(f"{key}: a worker stopped early")
            await asyncio.sleep(0.005)
        window.stop()
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)
        return window

    window = asyncio.run(main())
    check(completed() == n, f"{key}: completed {completed()}, not {n}")
    for worker in workers:
        check(worker.stats.lost == 0 and worker.stats.failed == 0, f"{key}: {worker.stats}")
    expect_counts(server, queue, pending=0, active=0, completed=n)
    kind = "async" if async_handler else "sync"
    split = (
        f"{len(group)} Workers (one per server) x concurrency {conc // len(group)}"
        if len(group) > 1
        else f"Worker(concurrency={conc})"
    )
    return RunResult(
        {f"{key} Worker {kind} no-op x{conc}": (n / window.wall, "jobs/s")},
        n,
        window,
        note=f"{SHIPPED}: {split} defaults (batched), {kind} handler, in this process",
    )


def run_w8(cfg: Config, server: Server) -> RunResult:
    return _worker_drain(cfg, server, "W8", 8, async_handler=False)


def run_w64(cfg: Config, server: Server) -> RunResult:
    return _worker_drain(cfg, server, "W64", 64, async_handler=True)


# --- WD: idle pickup through the shipped Worker -------------------------------------------------


def run_wd(cfg: Config, server: Server) -> RunResult:
    from jobbie import Job, JobContext, Worker

    warm, samples, period = 5, cfg.d_samples, 0.020
    total = warm + samples
    warm_up(server, 5)
    started: dict[int, float] = {}
    worker = Worker(server.url, queues=["wd"])  # every default: concurrency 10, batched

    @worker.handler("wd")
    def stamp(job: Job, ctx: JobContext) -> None:
        started[job.payload["i"]] = pc()

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    sent: list[float] = []
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        time.sleep(0.5)  # the worker parks in its long-poll
        begin = pc()
        for i in range(total):
            delay = begin + i * period - pc()
            if delay > 0:
                time.sleep(delay)
            t0 = pc()
            conn.request("POST", ENQUEUE, enqueue_body("wd", i), JSON_HEADERS)
            resp = conn.getresponse()
            decode(resp.status, resp.read(), 201, "enqueue")
            sent.append(t0)
        deadline = time.monotonic() + 30
        while len(started) < total and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
        thread.join(30)
        conn.close()
    check(len(started) == total, f"WD: {total - len(started)} jobs never started")
    lat = [(started[i] - sent[i]) * 1000 for i in range(warm, total)]
    return RunResult(
        {
            "WD pickup p50, shipped Worker": (percentile(lat, 0.5), "ms"),
            "WD pickup p99, shipped Worker": (percentile(lat, 0.99), "ms"),
        },
        extra={"p90_ms": percentile(lat, 0.9), "max_ms": max(lat), "samples": len(lat)},
        note=f"{SHIPPED}: Worker defaults, sync handler on a thread; enqueue by http.client",
    )


# --- C8n: raw unbatched loops with ack-and-fetch-next --------------------------------------------


async def _c8n(server: Server, queue: str, conc: int) -> tuple[list[str], Window]:
    acked: list[str] = []
    last = 0.0

    async def loop(conn: RawConnection, worker_id: str) -> None:
        nonlocal last
        status, data = await conn.post(FETCH, fetch_body(queue, worker_id, 0))
        if status == 204:
            return
        job = decode(status, data, 200, "fetch")
        nxt = {"queues": [queue], "count": 1}
        while True:
            body = json.dumps({"worker_id": worker_id, "attempt": job["attempt"], "next": nxt})
            status, data = await conn.post(f"/api/v1/ack/{job['job_id']}", body.encode())
            answer = decode(status, data, 200, "ack with next")
            check(answer["status"] == "completed", f"ack: {answer}")
            acked.append(job["job_id"])
            last = pc()
            if answer["next"]:
                job = answer["next"][0]
                continue
            status, data = await conn.post(FETCH, fetch_body(queue, worker_id, 0))
            if status == 204:
                return
            job = decode(status, data, 200, "fetch")

    conns = [RawConnection(s.host, s.port) for s in run.spread_over(server, conc)]
    window = Window(server).start()
    await asyncio.gather(*(loop(c, f"bench-n{i}") for i, c in enumerate(conns)))
    window.stop(end=last)
    for conn in conns:
        await conn.aclose()
    return acked, window


def run_c8n(cfg: Config, server: Server) -> RunResult:
    n, conc = cfg.n_c8, 8
    ids = asyncio.run(load_jobs(server, "c8n", 0, n, 1000, 2))
    acked, window = asyncio.run(_c8n(server, "c8n", conc))
    check(sorted(acked) == sorted(ids), "C8n: acked ids differ from the enqueued ones")
    expect_counts(server, "c8n", pending=0, active=0, completed=n)
    return RunResult(
        {f"C8n lifecycle, {conc}w ack+next": (n / window.wall, "jobs/s")},
        n,
        window,
        note=run.client_label("raw", conc) + "; ack carries next (count 1), fetch only when empty",
    )


WORKLOADS = [
    Workload("U1", run_u1),
    Workload("U16", run_u16),
    Workload("UB", run_ub),
    Workload("W8", run_w8),
    Workload("W64", run_w64),
    Workload("WD", run_wd),
    Workload("C8n", run_c8n),
]


# --- targets ------------------------------------------------------------------------------------


def _median(rows: list[dict[str, Any]], prefix: str) -> float | None:
    for row in rows:
        if row["label"].startswith(prefix) and "median" in row:
            return float(row["median"])
    return None


def print_targets(rows: list[dict[str, Any]]) -> None:
    """The client targets that one `bench.run` can check (medians of this run)."""
    checks: list[tuple[str, float | None, str, bool | None]] = []

    def ratio(name: str, a: str, b: str, goal: float) -> None:
        x, y = _median(rows, a), _median(rows, b)
        value = None if x is None or y is None or y <= 0 else x / y
        checks.append((name, value, f">= {goal}x", None if value is None else value >= goal))

    def at_most(name: str, label: str, goal: float, unit: str) -> None:
        value = _median(rows, label)
        checks.append((name, value, f"<= {goal} {unit}", None if value is None else value <= goal))

    def paired(name: str, label: str, goal: float) -> None:
        # The median of the per-run ratios: both sides ran interleaved on the same server.
        value = _median(rows, label)
        checks.append((name, value, f">= {goal}x", None if value is None else value >= goal))

    paired("Client.enqueue / raw http.client", "U1 Client/raw", 0.85)
    paired("AsyncClient.enqueue x16 / raw 16", "U16 AsyncClient/raw", 0.5)
    paired("Client.enqueue_batch / raw batch", "UB Client/raw", 0.85)
    ratio("Worker async x64 / raw batched drain (C8b)", "W64 ", "C8b ", 0.5)
    at_most("Client CPU per request", "U1 Client CPU", 400, "µs")
    at_most("AsyncClient CPU per request", "U16 AsyncClient CPU", 300, "µs")
    for q, slack in (("p50", 1.0), ("p99", 3.0)):
        shipped, raw = _median(rows, f"WD pickup {q}"), _median(rows, f"D pickup {q}")
        value = None if shipped is None or raw is None else shipped - raw
        checks.append(
            (
                f"pickup {q}: shipped Worker - raw",
                value,
                f"<= +{slack} ms",
                None if value is None else value <= slack,
            )
        )
    known = [c for c in checks if c[1] is not None]
    if not known:
        return
    print("\nClient targets (medians of this run):")
    for name, value, goal, ok in known:
        assert value is not None
        print(f"  {name:<45} {value:>9.2f}  target {goal:<10} {'met' if ok else 'MISSED'}")


# --- python -m bench.clients cpu ------------------------------------------------------------------


def _sync_candidates(server: Server) -> dict[str, Callable[[int], None]]:
    import httpx
    import urllib3

    from jobbie import Client

    def stdlib(n: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port)
        for i in range(n):
            conn.request("POST", ENQUEUE, enqueue_body("cpu", i), JSON_HEADERS)
            resp = conn.getresponse()
            check(resp.status == 201, "stdlib")
            json.loads(resp.read())
        conn.close()

    def with_urllib3(n: int) -> None:
        pool = urllib3.HTTPConnectionPool(server.host, server.port, maxsize=1)
        for i in range(n):
            resp = pool.urlopen("POST", ENQUEUE, body=enqueue_body("cpu", i), headers=JSON_HEADERS)
            check(resp.status == 201, "urllib3")
            json.loads(resp.data)
        pool.close()

    def with_httpx(n: int) -> None:
        with httpx.Client(base_url=server.url) as client:
            for i in range(n):
                resp = client.post(ENQUEUE, content=enqueue_body("cpu", i), headers=JSON_HEADERS)
                check(resp.status_code == 201, "httpx")
                json.loads(resp.content)

    def shipped(n: int) -> None:
        with Client(server.url) as client:
            for i in range(n):
                client.enqueue("cpu", {"i": i})

    return {
        "stdlib http.client, 1 thread": stdlib,
        "urllib3 HTTPConnectionPool, 1 thread": with_urllib3,
        "httpx.Client, 1 thread": with_httpx,
        "jobbie Client.enqueue (shipped), 1 thread": shipped,
    }


def _async_candidates(
    server: Server, conc: int
) -> dict[str, Callable[[int], Coroutine[Any, Any, None]]]:
    import aiohttp
    import httpx

    from jobbie import AsyncClient

    async def fan_out(n: int, one: Callable[[int], Awaitable[None]]) -> None:
        numbers = iter(range(n))

        async def task() -> None:
            for i in numbers:
                await one(i)

        await asyncio.gather(*(task() for _ in range(conc)))

    async def with_httpx(n: int) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:

            async def one(i: int) -> None:
                resp = await client.post(
                    ENQUEUE, content=enqueue_body("cpu", i), headers=JSON_HEADERS
                )
                check(resp.status_code == 201, "httpx async")
                json.loads(resp.content)

            await fan_out(n, one)

    async def with_aiohttp(n: int) -> None:
        async with aiohttp.ClientSession(server.url) as session:

            async def one(i: int) -> None:
                async with session.post(
                    ENQUEUE, data=enqueue_body("cpu", i), headers=JSON_HEADERS
                ) as resp:
                    check(resp.status == 201, "aiohttp")
                    json.loads(await resp.read())

            await fan_out(n, one)

    async def shipped(n: int) -> None:
        async with AsyncClient(server.url) as client:

            async def one(i: int) -> None:
                await client.enqueue("cpu", {"i": i})

            await fan_out(n, one)

    return {
        f"httpx.AsyncClient, {conc} tasks": with_httpx,
        f"aiohttp.ClientSession, {conc} tasks": with_aiohttp,
        f"jobbie AsyncClient.enqueue (shipped), {conc} tasks": shipped,
    }


def measure_cpu(n: int, runs: int, data_root: Path) -> list[tuple[str, float, float]]:
    """(candidate, median client CPU µs per request, median requests/s) for each candidate."""
    server = Server(data_root, (), keep=False)
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        server.start()
        warm_up(server)
        sync = _sync_candidates(server)
        concs = (8, 16)
        for _ in range(runs):
            for name, fn in sync.items():
                fn(20)
                c0, t0 = cpu_seconds(), pc()
                fn(n)
                wall, cpu = pc() - t0, cpu_seconds() - c0
                results.setdefault(name, []).append((cpu / n * 1e6, n / wall))
            for conc in concs:
                for name, afn in _async_candidates(server, conc).items():
                    asyncio.run(afn(20))

                    async def timed(afn: Callable[[int], Awaitable[None]] = afn) -> float:
                        t0 = pc()
                        await afn(n)
                        return pc() - t0

                    c0 = cpu_seconds()
                    wall = asyncio.run(timed())
                    cpu = cpu_seconds() - c0
                    results.setdefault(name, []).append((cpu / n * 1e6, n / wall))
    finally:
        server.stop()
        server.cleanup()
    out = []
    for name, values in results.items():
        us = sorted(v[0] for v in values)
        rate = sorted(v[1] for v in values)
        out.append((name, us[len(us) // 2], rate[len(rate) // 2]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("what", choices=["cpu"], help="cpu: client CPU per request")
    parser.add_argument("--n", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs (median reported)")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    rows = measure_cpu(args.n, args.runs, args.data_root)
    print(f"\nClient CPU per enqueue (getrusage of this process), median of {args.runs}:")
    print(f"| {'client':<50} | {'CPU µs/request':>14} | {'requests/s':>10} |")
    print(f"| {'-' * 50} | {'-' * 14} | {'-' * 10} |")
    for name, us, rate in rows:
        print(f"| {name:<50} | {us:>14,.0f} | {rate:>10,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- hooks for bench.compare (Jobbie's shipped client beside Huey and RQ) ------------------------

# (row key, label, unit, workload); the peers run their own A1/A16/B/C8/D beside these rows.
COMPARE_ROWS = [
    ("U1", "U1 Client.enqueue, 1 producer (peer: A1)", "jobs/s", "U1"),
    ("U16", "U16 AsyncClient.enqueue, 16 tasks (peer: A16)", "jobs/s", "U16"),
    ("UB", "UB Client.enqueue_batch, 1,000/call (peer: B)", "jobs/s", "UB"),
    ("W8", "W8 shipped Worker, sync x8 (peer: C8 consumer)", "jobs/s", "W8"),
    ("W64", "W64 shipped Worker, async x64", "jobs/s", "W64"),
    ("C8n", "C8n raw drain, 8 loops ack+next (peer: C8)", "jobs/s", "C8n"),
    ("WD p50", "WD pickup p50, shipped Worker (peer: D)", "ms", "WD"),
    ("WD p99", "WD pickup p99, shipped Worker (peer: D)", "ms", "WD"),
]
COMPARE_WORKLOADS = ["U1", "U16", "UB", "W8", "W64", "C8n", "WD"]
COMPARE_FNS: dict[str, Callable[[Config, Server], RunResult]] = {
    "U1": run_u1,
    "U16": run_u16,
    "UB": run_ub,
    "W8": run_w8,
    "W64": run_w64,
    "C8n": run_c8n,
    "WD": run_wd,
}


def compare_values(workload: str, result: RunResult) -> dict[str, float] | None:
    """The row values of one of these workloads' results (None: not one of them)."""
    if workload not in COMPARE_FNS:
        return None
    if workload == "WD":
        metrics = list(result.metrics.values())
        return {"WD p50": metrics[0][0], "WD p99": metrics[1][0]}
    return {workload: next(iter(result.metrics.values()))[0]}


def peer_fns(peer: Any, n: int, samples: int) -> dict[str, Callable[[], Any]]:
    """What a peer runs beside each of these rows: its own client and consumer."""
    from bench.peers import NotApplicable

    def no_async_worker() -> Any:
        raise NotApplicable("no asyncio worker")

    def renamed(result: Any, names: dict[str, str]) -> Any:
        result.values = {names.get(k, k): v for k, v in result.values.items()}
        return result

    return {
        "U1": lambda: renamed(peer.a1(n), {"A1": "U1"}),
        "U16": lambda: renamed(peer.a16(n), {"A16": "U16"}),
        "UB": lambda: renamed(peer.b(n), {"B": "UB"}),
        "W8": lambda: renamed(peer.c8(n), {"C8": "W8"}),
        "W64": no_async_worker,
        "C8n": lambda: renamed(peer.c8(n), {"C8": "C8n"}),
        "WD": lambda: renamed(peer.d(samples), {"D p50": "WD p50", "D p99": "WD p99"}),
    }

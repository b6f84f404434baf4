"""Benchmark a real `jobbie server` over HTTP: `python -m bench.run [--quick] [--only A1,B,...]`.

Each workload run starts a fresh server process with its own data directory (default
durability, i.e. synchronous=FULL), drives it over HTTP from this process, checks that the work
was really done (counts, ids, statuses), stops the server with SIGTERM and reports the median of
`--runs` runs with min-max. Server and load generator share the machine's cores, so every
figure includes the client; the client CPU columns show how much of the machine the client
took.

Workloads:
  A1   enqueue, one job per POST /api/v1/enqueue, 1 client (raw asyncio HTTP/1.1 by default)
  A16  the same with 16 concurrent producers (raw asyncio HTTP/1.1 by default, see --client)
  B    batch enqueue, 1,000 jobs per POST /api/v1/enqueue/batch, 1 client
  C8   drain pre-enqueued jobs with 8 concurrent fetch -> ack loops
  C8b  the same with fetch count=100 and POST /api/v1/ack/batch
  D    idle pickup latency: one long-polling worker, one enqueue every 20 ms; p50 / p99
       (worker and producer are two connections on one event loop)
  D2   the same across servers (--servers 2): long-poll on server B, enqueue on server A
  E    fetch latency with a small vs a big pending table, enqueue rate and RSS with the big one

`--database postgres[=ADMIN_URL]` runs them on PostgreSQL (a fresh database per run, dropped
after it) and adds PostgreSQL's CPU and WAL bytes per job; `--servers N` starts N servers on
that database and spreads the multi-connection workloads across them (bench/postgres.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench import postgres
from bench.postgres import DEFAULT_ADMIN_URL, PgDatabase, PgSample

JSON_HEADERS = {"Content-Type": "application/json"}
ENQUEUE = "/api/v1/enqueue"
ENQUEUE_BATCH = "/api/v1/enqueue/batch"
FETCH = "/api/v1/fetch"
ACK_BATCH = "/api/v1/ack/batch"
QUEUES = "/api/v1/queues"
CLK_TCK = os.sysconf("SC_CLK_TCK")
pc = time.perf_counter


class BenchError(Exception):
    """A workload did not do what it claimed (wrong status, lost or duplicated jobs...)."""


def check(condition: bool, message: str) -> None:
    """Fail the workload loudly unless `condition` holds."""
    if not condition:
        raise BenchError(message)


# --- the server under test --------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `python -m jobbie server` subprocess with its own temporary data directory, or on a
    PostgreSQL database (`database`: its URL; the directory then holds only the log).

    `group` lists every server of the run (this one first): workloads that spread their
    connections take them from it. `pg` is the run's PostgreSQL database, for the cost probe.
    """

    def __init__(
        self,
        data_root: Path,
        extra_args: Iterable[str],
        keep: bool,
        database: str | None = None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="jobbie-bench-", dir=data_root))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.extra_args = tuple(extra_args)
        self.keep = keep
        self.database = database
        self.group: list[Server] = [self]
        self.pg: PgDatabase | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self.shutdown_s = 0.0
        self.exit_code: int | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until GET /healthz answers 200."""
        store = ["--data-dir", str(self.data_dir)]
        if self.database is not None:
            store = ["--database", self.database]
        cmd = [
            sys.executable,
            "-m",
            "jobbie",
            "server",
            "--bind",
            f"{self.host}:{self.port}",
            *store,
            *self.extra_args,
        ]
        t0 = pc()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited during start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    self.startup_s = pc() - t0
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise BenchError(f"server not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ensure_alive(self) -> None:
        """Fail the workload if the server process has died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"server died (exit {self.proc.returncode}):\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads)."""
        return _stat_cpu(Path(f"/proc/{self.pid}/stat"))

    def loop_cpu_seconds(self) -> float:
        """CPU time of the main thread alone: the event loop (the rest is writer and readers)."""
        return _stat_cpu(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))

    def memory_mib(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MiB."""
        values: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def data_mib(self) -> float:
        """Bytes on disk under the data directory (database, WAL...), in MiB."""
        if self.pg is not None:
            return self.pg.size_mib()
        return sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file()) / 2**20

    def stop(self, timeout: float = 120.0) -> None:
        """SIGTERM, wait for the exit; SIGKILL only if it does not come."""
        if self.proc is None or self.proc.poll() is not None:
            self.exit_code = None if self.proc is None else self.proc.returncode
            return
        t0 = pc()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.exit_code = -9
        self.shutdown_s = pc() - t0

    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def issues(self) -> list[str]:
        """What looked wrong in the server's exit and log."""
        found: list[str] = []
        lines = self.log_lines()
        if self.exit_code == -signal.SIGTERM and any("shutdown complete" in x for x in lines):
            # uvicorn re-raises the captured signal once its own shutdown is done.
            found.append(
                "graceful shutdown finished, but the process then died of the re-raised SIGTERM "
                f"(exit {self.exit_code}, not 0); 'shutdown: complete' "
                f"{'was' if any('shutdown: complete' in x for x in lines) else 'never'} logged"
            )
        elif self.exit_code not in (0, None):
            found.append(f"server exit code {self.exit_code} after SIGTERM")
        bad = [
            line
            for line in lines
            if "Traceback" in line or "ERROR" in line or '"error"' in line.lower()
        ]
        if bad:
            found.append(f"{len(bad)} error line(s) in the server log, first: {bad[0][:200]}")
        return found

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def _stat_cpu(path: Path) -> float:
    stat = path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Window:
    """Wall time and the CPU that the servers (every one of the run's group), this process and,
    on PostgreSQL, the database used over a timed section, plus the WAL PostgreSQL wrote."""

    server: Server
    t0: float = 0.0
    srv0: float = 0.0
    loop0: float = 0.0
    cli0: float = 0.0
    wall: float = 0.0
    srv_cpu: float = 0.0
    loop_cpu: float = 0.0
    cli_cpu: float = 0.0
    busy0: float = 0.0
    steal0: float = 0.0
    other_cpu: float = 0.0
    steal: float = 0.0
    pg0: PgSample | None = None
    pg_cpu: float | None = None  # PostgreSQL processes serving this run (None: not measured)
    pg_backend_cpu: float | None = None  # of which the backends connected to the run's database
    pg_other_db_cpu: float | None = None  # PostgreSQL backends of other databases (noise)
    wal_bytes: int | None = None  # this database's WAL records, else the cluster's WAL
    wal_cluster_bytes: int | None = None  # everything PostgreSQL wrote meanwhile
    wal_note: str = ""  # why wal_bytes is the cluster's

    def _servers_cpu(self) -> tuple[float, float]:
        group = self.server.group
        return sum(s.cpu_seconds() for s in group), sum(s.loop_cpu_seconds() for s in group)

    def start(self) -> Window:
        if self.server.pg is not None:
            self.pg0 = self.server.pg.sample()
        self.busy0, self.steal0 = machine_cpu()
        self.srv0, self.loop0 = self._servers_cpu()
        self.cli0, self.t0 = time.process_time(), pc()
        return self

    def stop(self, end: float | None = None) -> Window:
        """Close the window at `end` (a perf_counter value) or now."""
        now = pc()
        self.wall = (now if end is None else end) - self.t0
        srv, loop = self._servers_cpu()
        self.srv_cpu, self.loop_cpu = srv - self.srv0, loop - self.loop0
        self.cli_cpu = time.process_time() - self.cli0
        busy, steal = machine_cpu()
        if self.server.pg is not None and self.pg0 is not None:
            cost = self.server.pg.cost(self.pg0, self.server.pg.sample())
            self.pg_cpu, self.pg_other_db_cpu = cost.cpu_s, cost.other_db_cpu_s
            self.pg_backend_cpu = cost.backend_cpu_s
            self.wal_cluster_bytes = cost.wal_bytes
            self.wal_bytes = cost.wal_bytes if cost.own_wal_bytes is None else cost.own_wal_bytes
            self.wal_note = cost.wal_note
        # Whatever else ran on the machine meanwhile (other processes): it skews the figure.
        self.other_cpu = max(
            0.0, busy - self.busy0 - self.srv_cpu - self.cli_cpu - (self.pg_cpu or 0.0)
        )
        self.steal = steal - self.steal0
        return self


@dataclass
class RunResult:
    """One run of one workload: labelled metrics (the first is the headline) plus extras."""

    metrics: dict[str, tuple[float, str]]
    ops: int = 0
    window: Window | None = None
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""
    cpu_label: str | None = None  # the metric the CPU window belongs to (default: the first)

    def srv_us_per_op(self) -> float | None:
        if self.window is None or not self.ops:
            return None
        return self.window.srv_cpu / self.ops * 1e6

    def pg_us_per_op(self) -> float | None:
        """PostgreSQL CPU per job (µs), when the run was on PostgreSQL."""
        if self.window is None or not self.ops or self.window.pg_cpu is None:
            return None
        return self.window.pg_cpu / self.ops * 1e6

    def wal_per_op(self) -> float | None:
        """PostgreSQL WAL bytes per job, when the run was on PostgreSQL."""
        if self.window is None or not self.ops or self.window.wal_bytes is None:
            return None
        return self.window.wal_bytes / self.ops

    def cpu_percent(self) -> tuple[float, float] | None:
        """(server, client) CPU as % of one core over the timed window."""
        if self.window is None or self.window.wall <= 0:
            return None
        w = self.window
        return 100 * w.srv_cpu / w.wall, 100 * w.cli_cpu / w.wall


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 1]."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- HTTP clients for the concurrent workloads --------------------------------------------------


class Poster(Protocol):
    """One logical client connection that sends JSON POSTs one at a time."""

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on one asyncio stream.

    Costs a few tens of µs of CPU per request against several hundred for httpx.AsyncClient,
    so 16 producers sharing the two cores with the server load the server, not the client.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._prefix = f"Host: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(
            b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), self._prefix, len(body), body)
        )
        try:
            status, data, close = await self._read_response(self._reader)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.aclose()
            raise BenchError(f"POST {path}: connection lost ({exc!r})") from exc
        if close:
            await self.aclose()
        return status, data

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = 0, False, False
        for line in head[:-4].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            parts: list[bytes] = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")  # no trailers expected: the blank line
            return status, b"".join(parts), close
        return status, (await reader.readexactly(length) if length else b""), close

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


class HttpxPoster:
    """The same interface over a shared httpx.AsyncClient (for comparison: --client httpx)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(path, content=body, headers=JSON_HEADERS)
        return response.status_code, response.content


def spread_over(server: Server, n: int) -> list[Server]:
    """The server of each of `n` connections, round-robin over the run's servers."""
    return [server.group[i % len(server.group)] for i in range(n)]


@contextlib.asynccontextmanager
async def open_posters(
    kind: str, server: Server, n: int, spread: bool = False
) -> AsyncIterator[list[Poster]]:
    """`n` concurrent clients: raw connections, or an httpx.AsyncClient per server with n
    connections in all. `spread`: round-robin over the run's servers, else all on `server`."""
    targets = spread_over(server, n) if spread else [server] * n
    if kind == "raw":
        raw = [RawConnection(s.host, s.port) for s in targets]
        try:
            yield list(raw)
        finally:
            for conn in raw:
                await conn.aclose()
    else:
        async with contextlib.AsyncExitStack() as stack:
            clients: dict[str, httpx.AsyncClient] = {}
            for s in dict.fromkeys(targets):
                share = targets.count(s)
                limits = httpx.Limits(max_connections=share, max_keepalive_connections=share)
                clients[s.url] = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=s.url, timeout=120, limits=limits)
                )
            yield [HttpxPoster(clients[s.url]) for s in targets]


def client_label(kind: str, n: int) -> str:
    if kind == "raw":
        return f"raw asyncio HTTP/1.1, {n} keep-alive connections, 1 event loop"
    return f"httpx.AsyncClient, {n} connections, 1 event loop"


# --- request bodies and checks ------------------------------------------------------------------


def enqueue_body(queue: str, i: int) -> bytes:
    return b'{"queue":"%s","payload":{"i":%d}}' % (queue.encode(), i)


def batch_body(queue: str, start: int, count: int) -> bytes:
    q = queue.encode()
    jobs = b",".join(
        b'{"queue":"%s","payload":{"i":%d}}' % (q, i) for i in range(start, start + count)
    )
    return b'{"jobs":[' + jobs + b"]}"


def fetch_body(queue: str, worker_id: str, timeout: float, count: int | None = None) -> bytes:
    body: dict[str, Any] = {"queues": [queue], "worker_id": worker_id, "timeout": timeout}
    if count is not None:
        body["count"] = count
    return json.dumps(body).encode()


def ack_body(worker_id: str, attempt: int) -> bytes:
    return b'{"result":null,"worker_id":"%s","attempt":%d}' % (worker_id.encode(), attempt)


def decode(status: int, data: bytes, expected: int, what: str) -> Any:
    """Parse a JSON answer after checking its status."""
    check(status == expected, f"{what}: HTTP {status} (expected {expected}): {data[:300]!r}")
    return json.loads(data)


def queue_counts(server: Server, queue: str) -> dict[str, Any]:
    """The queue's entry in GET /api/v1/queues (counts by state, totals)."""
    response = httpx.get(server.url + QUEUES, timeout=120)
    listing = decode(response.status_code, response.content, 200, "GET /api/v1/queues")
    for entry in listing["queues"]:
        if entry["name"] == queue:
            return dict(entry)
    raise BenchError(f"queue {queue!r} missing from GET /api/v1/queues")


def expect_counts(server: Server, queue: str, **expected: int) -> None:
    """Check `counts` of the queue, e.g. expect_counts(s, "a1", pending=2000, active=0)."""
    counts = queue_counts(server, queue)["counts"]
    for state, n in expected.items():
        check(counts[state] == n, f"queue {queue}: {state}={counts[state]}, expected {n}")


def expect_unique_ids(ids: list[str], n: int, what: str) -> None:
    check(len(ids) == n, f"{what}: {len(ids)} job ids, expected {n}")
    check(len(set(ids)) == n, f"{what}: {n - len(set(ids))} duplicate job ids")


async def load_jobs(
    server: Server, queue: str, start: int, total: int, per_call: int, conns: int
) -> list[str]:
    """Batch-enqueue `total` jobs over `conns` concurrent connections; returns their ids."""
    chunks = iter(range(start, start + total, per_call))
    ids: list[str] = []

    async def loader(poster: Poster) -> None:
        for lo in chunks:  # the iterator is shared: each chunk goes to one loader
            count = min(per_call, start + total - lo)
            status, data = await poster.post(ENQUEUE_BATCH, batch_body(queue, lo, count))
            job_ids = decode(status, data, 201, "POST /api/v1/enqueue/batch")["job_ids"]
            check(len(job_ids) == count, f"batch of {count} returned {len(job_ids)} ids")
            ids.extend(job_ids)

    async with open_posters("raw", server, conns) as posters:
        await asyncio.gather(*(loader(p) for p in posters))
    return ids


def warm_up(server: Server, n: int = 20) -> None:
    """A few requests on a side queue, so imports, caches and the first WAL growth are paid."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(n):
            r = client.post(ENQUEUE, content=enqueue_body("warmup", i), headers=JSON_HEADERS)
            decode(r.status_code, r.content, 201, "warm-up enqueue")


# --- workloads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Sizes and options of one bench invocation."""

    runs: int
    client: str
    big: int
    n_a1: int
    n_a16: int
    n_b: int
    n_c8: int
    n_c8b: int
    d_samples: int
    e_small: int
    e_samples: int
    e_enqueue: int
    server_args: tuple[str, ...]
    data_root: Path
    keep: bool
    database: str | None = None  # PostgreSQL admin URL (a fresh database per run); None: SQLite
    servers: int = 1  # servers per run (PostgreSQL: all on the run's database)

    @property
    def backend(self) -> str:
        """A short name of the store: "sqlite", "pg" or "pg x2"."""
        if self.database is None:
            return "sqlite"
        return "pg" if self.servers == 1 else f"pg x{self.servers}"


async def _a1(cfg: Config, server: Server, n: int) -> tuple[list[str], Window]:
    ids: list[str] = []
    async with open_posters(cfg.client, server, 1) as (poster,):
        status, data = await poster.post(ENQUEUE, enqueue_body("warmup", 0))
        decode(status, data, 201, "warm-up enqueue")
        window = Window(server).start()
        for i in range(n):
            status, data = await poster.post(ENQUEUE, enqueue_body("a1", i))
            ids.append(decode(status, data, 201, "POST /api/v1/enqueue")["job_id"])
        window.stop()
    return ids, window


def run_a1(cfg: Config, server: Server) -> RunResult:
    n = cfg.n_a1
    warm_up(server)
    ids, window = asyncio.run(_a1(cfg, server, n))
    expect_unique_ids(ids, n, "A1")
    expect_counts(server, "a1", pending=n)
    return RunResult(
        {"A1 enqueue, 1 client": (n / window.wall, "jobs/s")},
        n,
        window,
        note=client_label(cfg.client, 1),
    )


async def _a16(cfg: Config, server: Server, n: int, conc: int) -> tuple[list[str], Window]:
    bodies = iter([enqueue_body("a16", i) for i in range(n)])
    ids: list[str] = []

    async def producer(poster: Poster) -> None:
        for body in bodies:
            status, data = await poster.post(ENQUEUE, body)
            ids.append(decode(status, data, 201, "POST /api/v1/enqueue")["job_id"])

    async with open_posters(cfg.client, server, conc, spread=True) as posters:
        for i, poster in enumerate(posters):  # open every connection before the clock starts
            status, data = await poster.post(ENQUEUE, enqueue_body("warmup", i))
            decode(status, data, 201, "warm-up enqueue")
        window = Window(server).start()
        await asyncio.gather(*(producer(p) for p in posters))
        window.stop()
    return ids, window


def run_a16(cfg: Config, server: Server) -> RunResult:
    n, conc = cfg.n_a16, 16
    warm_up(server)
    ids, window = asyncio.run(_a16(cfg, server, n, conc))
    expect_unique_ids(ids, n, "A16")
    expect_counts(server, "a16", pending=n)
    label = f"A16 enqueue, {conc} clients"
    return RunResult(
        {label: (n / window.wall, "jobs/s")}, n, window, note=client_label(cfg.client, conc)
    )


def run_b(cfg: Config, server: Server) -> RunResult:
    n, per_call = cfg.n_b, 1000
    # Bodies are encoded before the clock starts: the figure is the server's, not json.dumps'.
    bodies = [batch_body("b", lo, min(per_call, n - lo)) for lo in range(0, n, per_call)]
    ids: list[str] = []
    warm_up(server)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        window = Window(server).start()
        for body in bodies:
            r = client.post(ENQUEUE_BATCH, content=body, headers=JSON_HEADERS)
            ids.extend(decode(r.status_code, r.content, 201, "enqueue/batch")["job_ids"])
        window.stop()
    expect_unique_ids(ids, n, "B")
    expect_counts(server, "b", pending=n)
    label = f"B batch enqueue ({per_call}/call)"
    return RunResult({label: (n / window.wall, "jobs/s")}, n, window)


async def _drain(
    cfg: Config, server: Server, queue: str, conc: int, count: int | None
) -> tuple[list[str], Window, float]:
    """`conc` loops of fetch -> ack (or fetch count -> ack/batch) until a fetch answers 204."""
    acked: list[str] = []
    last_ack = 0.0

    async def worker(poster: Poster, worker_id: str) -> None:
        nonlocal last_ack
        fetch = fetch_body(queue, worker_id, 0, count)
        while True:
            status, data = await poster.post(FETCH, fetch)
            if status == 204:
                return
            answer = decode(status, data, 200, "POST /api/v1/fetch")
            if count is None:
                job_id, attempt = answer["job_id"], answer["attempt"]
                status, data = await poster.post(
                    f"/api/v1/ack/{job_id}", ack_body(worker_id, attempt)
                )
                result = decode(status, data, 200, f"POST /api/v1/ack/{job_id}")
                check(result["status"] == "completed", f"ack {job_id}: {result}")
                acked.append(job_id)
            else:
                jobs = answer["jobs"]
                check(0 < len(jobs) <= count, f"fetch count={count} returned {len(jobs)} jobs")
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
                results = decode(status, data, 200, "POST /api/v1/ack/batch")["results"]
                check(len(results) == len(jobs), f"ack/batch: {len(results)} results")
                for job, res in zip(jobs, results, strict=True):
                    check(res.get("job_id") == job["job_id"], f"ack/batch order: {res}")
                    check(res.get("status") == "completed", f"ack/batch: {res}")
                    acked.append(job["job_id"])
            last_ack = pc()

    async with open_posters(cfg.client, server, conc, spread=True) as posters:
        window = Window(server).start()
        await asyncio.gather(*(worker(p, f"bench-w{i}") for i, p in enumerate(posters)))
        window.stop(end=last_ack)  # first fetch -> last ack; the closing 204s are not counted
    return acked, window, last_ack


def _run_drain(cfg: Config, server: Server, key: str, n: int, count: int | None) -> RunResult:
    queue, conc = key.lower(), 8
    ids = asyncio.run(load_jobs(server, queue, 0, n, 1000, 2))
    expect_unique_ids(ids, n, f"{key} pre-enqueue")
    expect_counts(server, queue, pending=n)
    acked, window, _ = asyncio.run(_drain(cfg, server, queue, conc, count))
    check(len(acked) == n, f"{key}: acked {len(acked)} jobs, expected {n}")
    check(set(acked) == set(ids), f"{key}: acked ids differ from enqueued ids (duplicates?)")
    expect_counts(server, queue, pending=0, active=0, completed=n)
    totals = queue_counts(server, queue)["totals"]
    check(totals["completed"] == n, f"{key}: totals.completed={totals['completed']}")
    if count is None:
        label = f"{key} lifecycle, {conc} workers"
    else:
        label = f"{key} lifecycle, {conc}w x fetch {count}"
    return RunResult(
        {label: (n / window.wall, "jobs/s")}, n, window, note=client_label(cfg.client, conc)
    )


def run_c8(cfg: Config, server: Server) -> RunResult:
    return _run_drain(cfg, server, "C8", cfg.n_c8, None)


def run_c8b(cfg: Config, server: Server) -> RunResult:
    return _run_drain(cfg, server, "C8b", cfg.n_c8b, 100)


async def _d(
    cfg: Config, server: Server, total: int, period: float, cross: bool = False
) -> list[tuple[float, float]]:
    """(enqueue start, fetch return) per job: one connection long-polls, another enqueues on a
    fixed schedule; both on one event loop, so no thread switch sits in the measurement.
    `cross`: the worker long-polls on the run's second server, the producer enqueues on the
    first, so the wake-up crosses servers (through PostgreSQL's NOTIFY)."""
    queue = "d"
    received: dict[str, float] = {}
    async with open_posters(cfg.client, server, 2, spread=cross) as (first, second):
        worker, producer = (second, first) if cross else (first, second)

        async def work() -> None:
            body = fetch_body(queue, "bench-d", 30)
            while len(received) < total:
                status, data = await worker.post(FETCH, body)
                t = pc()
                if status == 204:
                    continue
                job = decode(status, data, 200, "long-poll fetch")
                received[job["job_id"]] = t
                status, data = await worker.post(
                    f"/api/v1/ack/{job['job_id']}", ack_body("bench-d", job["attempt"])
                )
                decode(status, data, 200, "ack")

        task = asyncio.create_task(work())
        sent: list[tuple[str, float]] = []
        begin = pc() + 0.2  # lets the worker park in its long-poll first
        for i in range(total):
            # A fixed schedule rather than sleep(period): slow answers do not stretch it.
            delay = begin + i * period - pc()
            if delay > 0:
                await asyncio.sleep(delay)
            check(not task.done(), "D worker stopped early")
            t0 = pc()
            status, data = await producer.post(ENQUEUE, enqueue_body(queue, i))
            sent.append((decode(status, data, 201, "enqueue")["job_id"], t0))
        await asyncio.wait_for(task, timeout=35)
    missing = [job_id for job_id, _ in sent if job_id not in received]
    check(not missing, f"D: {len(missing)} of {total} jobs never reached the worker")
    return [(t0, received[job_id]) for job_id, t0 in sent]


def _run_pickup(cfg: Config, server: Server, key: str, cross: bool) -> RunResult:
    warm, samples, period = 5, cfg.d_samples, 0.020
    warm_up(server, 5)
    pairs = asyncio.run(_d(cfg, server, warm + samples, period, cross))
    lat = [(got - t0) * 1000 for t0, got in pairs[warm:]]
    check(min(lat) > 0, f"{key}: a job arrived before its enqueue started (clock mix-up)")
    metrics = {
        f"{key} pickup p50": (percentile(lat, 0.5), "ms"),
        f"{key} pickup p99": (percentile(lat, 0.99), "ms"),
    }
    extra = {"p90_ms": percentile(lat, 0.9), "max_ms": max(lat), "samples": len(lat)}
    note = f"{client_label(cfg.client, 2)}; the worker long-polls (timeout 30 s)"
    if cross:
        note += " on server B, the producer enqueues on server A"
    return RunResult(metrics, extra=extra, note=note)


def run_d(cfg: Config, server: Server) -> RunResult:
    return _run_pickup(cfg, server, "D", cross=False)


def run_d2(cfg: Config, server: Server) -> RunResult:
    check(len(server.group) >= 2, "D2 needs two servers (--database postgres --servers 2)")
    return _run_pickup(cfg, server, "D2", cross=True)


def _fetch_latency(server: Server, queue: str, samples: int) -> tuple[list[float], list[float]]:
    """`samples` fetch (timeout 0) + ack round trips after 20 warm-up ones: (fetch ms, both ms)."""
    body = fetch_body(queue, "bench-e", 0)
    fetch_ms: list[float] = []
    round_ms: list[float] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(20 + samples):
            t0 = pc()
            r = client.post(FETCH, content=body, headers=JSON_HEADERS)
            t1 = pc()
            job = decode(r.status_code, r.content, 200, "fetch")
            a = client.post(
                f"/api/v1/ack/{job['job_id']}",
                content=ack_body("bench-e", job["attempt"]),
                headers=JSON_HEADERS,
            )
            t2 = pc()
            check(decode(a.status_code, a.content, 200, "ack")["status"] == "completed", "ack")
            if i >= 20:
                fetch_ms.append((t1 - t0) * 1000)
                round_ms.append((t2 - t0) * 1000)
    return fetch_ms, round_ms


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def run_e(cfg: Config, server: Server) -> RunResult:
    queue, small, big, samples = "e", cfg.e_small, cfg.big, cfg.e_samples
    check(big > small + samples + 20, "--big must exceed the small table plus the samples")
    s_lbl, b_lbl = size_label(small), size_label(big)
    metrics: dict[str, tuple[float, str]] = {}
    extra: dict[str, float] = {}

    asyncio.run(load_jobs(server, queue, 0, small, 5000, 2))
    expect_counts(server, queue, pending=small)
    fetch_ms, round_ms = _fetch_latency(server, queue, samples)
    metrics[f"E fetch p50 @{s_lbl} pending"] = (statistics.median(fetch_ms), "ms")
    metrics[f"E fetch+ack p50 @{s_lbl}"] = (statistics.median(round_ms), "ms")
    extra[f"fetch_p99_ms_{s_lbl}"] = percentile(fetch_ms, 0.99)

    pending = small - samples - 20
    loaded = big - pending
    window = Window(server).start()
    asyncio.run(load_jobs(server, queue, small, loaded, 5000, 2))
    window.stop()
    expect_counts(server, queue, pending=big, active=0)
    load_label = f"E load to {b_lbl} (5000/call, 2 conns)"
    metrics[load_label] = (loaded / window.wall, "jobs/s")

    list_ms = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(6):
            t0 = pc()
            r = client.get(QUEUES)
            list_ms.append((pc() - t0) * 1000)
            decode(r.status_code, r.content, 200, "GET /api/v1/queues")
    extra[f"queues_list_ms_{b_lbl}"] = statistics.median(list_ms[1:])

    fetch_ms, round_ms = _fetch_latency(server, queue, samples)
    metrics[f"E fetch p50 @{b_lbl} pending"] = (statistics.median(fetch_ms), "ms")
    metrics[f"E fetch+ack p50 @{b_lbl}"] = (statistics.median(round_ms), "ms")
    extra[f"fetch_p99_ms_{b_lbl}"] = percentile(fetch_ms, 0.99)

    n = cfg.e_enqueue
    ids: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        t0 = pc()
        for i in range(n):
            r = client.post(ENQUEUE, content=enqueue_body(queue, big + i), headers=JSON_HEADERS)
            ids.append(decode(r.status_code, r.content, 201, "enqueue")["job_id"])
        elapsed = pc() - t0
    expect_unique_ids(ids, n, "E enqueue")
    expect_counts(server, queue, pending=big - samples - 20 + n)
    metrics[f"E enqueue 1 client @{b_lbl}"] = (n / elapsed, "jobs/s")

    rss, hwm = server.memory_mib()
    metrics[f"E server RSS @{b_lbl} stored"] = (rss, "MiB")
    extra["vm_hwm_mib"] = hwm
    extra["data_dir_mib"] = server.data_mib()
    return RunResult(
        metrics,
        loaded,
        window,
        extra=extra,
        note="fetch/ack latency: sync httpx.Client, 1 worker; CPU columns: the big load",
        cpu_label=load_label,
    )


@dataclass(frozen=True)
class Workload:
    key: str
    fn: Callable[[Config, Server], RunResult]


WORKLOADS = [
    Workload("A1", run_a1),
    Workload("A16", run_a16),
    Workload("B", run_b),
    Workload("C8", run_c8),
    Workload("C8b", run_c8b),
    Workload("D", run_d),
    Workload("D2", run_d2),
    Workload("E", run_e),
]


def client_workloads() -> list[Workload]:
    """What users run (the shipped Client, AsyncClient and Worker): `bench/clients.py`."""
    from bench import clients

    return [Workload(w.key, w.fn) for w in clients.WORKLOADS]


# --- running and reporting ----------------------------------------------------------------------


@dataclass
class Outcome:
    """All runs of one workload."""

    key: str
    results: list[RunResult] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def fmt(value: float, unit: str) -> str:
    if unit in ("jobs/s", "MiB"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def describe(result: RunResult) -> str:
    """One line per run: every metric plus where the CPU went."""
    parts = [f"{label} {fmt(v, unit)} {unit}" for label, (v, unit) in result.metrics.items()]
    cpu = result.cpu_percent()
    us = result.srv_us_per_op()
    if cpu is not None and us is not None and result.window is not None:
        parts.append(
            f"{result.ops:,} jobs in {result.window.wall:.2f} s, server CPU {cpu[0]:.0f}% "
            f"(loop thread {100 * result.window.loop_cpu / result.window.wall:.0f}%, "
            f"{us:.0f} µs/job), client CPU {cpu[1]:.0f}%, other processes "
            f"{100 * result.window.other_cpu / result.window.wall:.0f}%, "
            f"steal {100 * result.window.steal / result.window.wall:.0f}%"
        )
    w = result.window
    if w is not None and w.wal_bytes is not None and result.ops:
        pg_us = result.pg_us_per_op()
        cpu_text = (
            "n/a (remote)"
            if pg_us is None or w.pg_cpu is None
            else (
                f"{100 * w.pg_cpu / w.wall:.0f}% ({pg_us:.0f} µs/job, of which its backends "
                f"{(w.pg_backend_cpu or 0.0) / result.ops * 1e6:.0f} and the shared processes "
                "the rest; other databases' backends "
                f"{100 * (w.pg_other_db_cpu or 0.0) / w.wall:.0f}%)"
            )
        )
        whole = w.wal_cluster_bytes or 0
        scope = f"of {whole / 2**20:.1f} MiB in all"
        if w.wal_note:
            scope = f"(the whole cluster's: {w.wal_note})"
        parts.append(
            f"PostgreSQL CPU {cpu_text}, WAL {w.wal_bytes / 2**20:.1f} MiB {scope} "
            f"({w.wal_bytes / result.ops:,.0f} B/job)"
        )
    parts += [f"{k} {v:,.2f}" for k, v in result.extra.items()]
    return "; ".join(parts)


def make_servers(cfg: Config) -> list[Server]:
    """The run's servers, not started yet: one on a fresh data directory, or `cfg.servers` on
    one fresh PostgreSQL database (created by `start_servers`). The first is the primary."""
    pg = PgDatabase(cfg.database) if cfg.database is not None else None
    url = pg.url if pg is not None else None
    servers = [
        Server(cfg.data_root, cfg.server_args, cfg.keep, database=url) for _ in range(cfg.servers)
    ]
    for server in servers:
        server.group, server.pg = servers, pg
    return servers


def start_servers(servers: list[Server]) -> None:
    """Create the run's database if it is PostgreSQL, then start the servers one by one."""
    if servers[0].pg is not None:
        servers[0].pg.create()
    for server in servers:
        server.start()


def stop_servers(servers: list[Server]) -> None:
    """SIGTERM every server, then drop the run's PostgreSQL database if there is one."""
    for server in servers:
        server.stop()
    if servers and servers[0].pg is not None:
        try:
            servers[0].pg.drop()
        except db_errors() as exc:  # the run's result stands; the database is left behind
            print(f"      WARNING: could not drop {servers[0].pg.name}: {exc}", flush=True)


NAMES = "ABCDEFGH"


def named(servers: list[Server]) -> list[tuple[str, Server]]:
    """(A, first server), (B, second server)..."""
    return [(NAMES[i], server) for i, server in enumerate(servers)]


def server_issues(servers: list[Server]) -> list[str]:
    """What looked wrong in the servers' exits and logs (named A, B... when several)."""
    if len(servers) == 1:
        return servers[0].issues()
    return [f"server {name}: {text}" for name, s in named(servers) for text in s.issues()]


def db_errors() -> tuple[type[Exception], ...]:
    """psycopg's error root when installed: a database that cannot be created fails the run."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


# What fails one run (recorded, reported) rather than the whole bench.
RUN_ERRORS: tuple[type[Exception], ...] = (
    BenchError,
    httpx.HTTPError,
    OSError,
    asyncio.IncompleteReadError,
    ValueError,
    KeyError,
)


def run_once(cfg: Config, workload: Workload, index: int, outcome: Outcome) -> None:
    """Fresh servers, one run of the workload; failures are recorded on the outcome."""
    servers = make_servers(cfg)
    server = servers[0]
    record: dict[str, Any] = {"workload": workload.key, "run": index + 1, "backend": cfg.backend}
    try:
        start_servers(servers)
        result = workload.fn(cfg, server)
        for s in servers:
            s.ensure_alive()
    except RUN_ERRORS + db_errors() as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        record["error"] = outcome.error
        outcome.records.append(record)
        print(f"  {workload.key} run {index + 1}: FAILED {outcome.error}", flush=True)
        return
    finally:
        stop_servers(servers)
        if outcome.error is not None:
            for name, s in named(servers):
                print(f"  --- server {name} log (tail) ---\n" + s.log_tail(), flush=True)
                s.cleanup()
    outcome.results.append(result)
    issues = server_issues(servers)
    w = result.window
    record.update(
        metrics={k: v for k, (v, _) in result.metrics.items()},
        extra=result.extra,
        ops=result.ops,
        wall_s=w.wall if w else None,
        server_cpu_s=w.srv_cpu if w else None,
        server_loop_thread_cpu_s=w.loop_cpu if w else None,
        other_processes_cpu_s=w.other_cpu if w else None,
        steal_s=w.steal if w else None,
        client_cpu_s=w.cli_cpu if w else None,
        postgres_cpu_s=w.pg_cpu if w else None,
        postgres_backends_cpu_s=w.pg_backend_cpu if w else None,
        postgres_other_databases_cpu_s=w.pg_other_db_cpu if w else None,
        postgres_wal_bytes=w.wal_bytes if w else None,
        postgres_wal_cluster_bytes=w.wal_cluster_bytes if w else None,
        postgres_wal_note=w.wal_note if w else None,
        servers=len(servers),
        server_startup_s=[s.startup_s for s in servers],
        server_shutdown_s=[s.shutdown_s for s in servers],
        server_exit_code=[s.exit_code for s in servers],
        server_log_lines=[len(s.log_lines()) for s in servers],
        issues=issues,
        note=result.note,
    )
    outcome.records.append(record)
    print(f"  {workload.key} run {index + 1}/{cfg.runs}: {describe(result)}", flush=True)
    for name, s in named(servers):
        label = f"server {name}" if len(servers) > 1 else "server"
        print(
            f"      {label}: start {s.startup_s:.2f} s, SIGTERM->exit {s.shutdown_s:.2f} s, "
            f"exit {s.exit_code}, {len(s.log_lines())} log lines",
            flush=True,
        )
    for issue in issues:
        print(f"      WARNING: {issue}", flush=True)
    for s in servers:
        s.cleanup()


def summary_rows(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Median, min and max of every metric over the runs (CPU columns for headline metrics)."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.error is not None:
            rows.append({"label": outcome.key, "error": outcome.error})
            continue
        first = outcome.results[0]
        for label, (_, unit) in first.metrics.items():
            values = [r.metrics[label][0] for r in outcome.results]
            row: dict[str, Any] = {
                "label": label,
                "unit": unit,
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "values": values,
            }
            if label == (first.cpu_label or next(iter(first.metrics))):
                us = [u for r in outcome.results if (u := r.srv_us_per_op()) is not None]
                cpus = [c for r in outcome.results if (c := r.cpu_percent()) is not None]
                if us and cpus:
                    row["server_us_per_job"] = statistics.median(us)
                    row["server_cpu_pct"] = statistics.median(c[0] for c in cpus)
                    row["client_cpu_pct"] = statistics.median(c[1] for c in cpus)
                    row["other_cpu_pct"] = statistics.median(
                        100 * r.window.other_cpu / r.window.wall
                        for r in outcome.results
                        if r.window is not None and r.window.wall > 0
                    )
                pg_us = [u for r in outcome.results if (u := r.pg_us_per_op()) is not None]
                wal = [b for r in outcome.results if (b := r.wal_per_op()) is not None]
                if pg_us:
                    row["pg_us_per_job"] = statistics.median(pg_us)
                if wal:
                    row["wal_bytes_per_job"] = statistics.median(wal)
                    # Any run whose WAL is the whole cluster's (pg_waldump failed) marks the row.
                    row["wal_cluster_wide"] = any(
                        r.window is not None and bool(r.window.wal_note) for r in outcome.results
                    )
            rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], runs: int) -> None:
    width = max(len(r["label"]) for r in rows)
    pg = any("wal_bytes_per_job" in r for r in rows)
    head = f"{'workload':<{width}}  {'median':>9}  {'min-max':>19}  {'unit':<6}"
    cols = f"  {'srv µs/job':>10}  {'srv CPU':>7}  {'cli CPU':>7}  {'other':>5}"
    if pg:
        cols += f"  {'PG µs/job':>9}  {'WAL B/job':>9}"
    print(f"\n{head}{cols}")
    print("-" * (len(head) + len(cols)))
    for r in rows:
        if "error" in r:
            print(f"{r['label']:<{width}}  FAILED: {r['error'][:70]}")
            continue
        unit = r["unit"]
        spread = f"{fmt(r['min'], unit)}-{fmt(r['max'], unit)}" if runs > 1 else ""
        line = f"{r['label']:<{width}}  {fmt(r['median'], unit):>9}  {spread:>19}  {unit:<6}"
        if "server_us_per_job" in r:
            line += (
                f"  {r['server_us_per_job']:>10,.0f}  {r['server_cpu_pct']:>6.0f}%"
                f"  {r['client_cpu_pct']:>6.0f}%  {r['other_cpu_pct']:>4.0f}%"
            )
        if pg and "wal_bytes_per_job" in r:
            pg_us = r.get("pg_us_per_job")
            line += f"  {'n/a' if pg_us is None else f'{pg_us:,.0f}':>9}"
            mark = "*" if r.get("wal_cluster_wide") else ""
            wal = f"{r['wal_bytes_per_job']:,.0f}{mark}"
            line += f"  {wal:>9}"
        print(line)
    if any(r.get("wal_cluster_wide") for r in rows):
        print(
            "* WAL of the whole PostgreSQL cluster (pg_waldump could not read the window's range)"
        )


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (a tmpfs would make fsync free)."""
    best, fstype = "", "?"
    resolved = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, kind, *_ = line.split()
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) > len(
            best
        ):
            best, fstype = mount, kind
    return fstype


def meta(cfg: Config) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "data_root": str(cfg.data_root),
        "data_root_fs": filesystem_of(cfg.data_root),
        "server_args": list(cfg.server_args),
        "backend": cfg.backend,
        "servers": cfg.servers,
        "postgres": None if cfg.database is None else postgres.describe(cfg.database),
        "runs": cfg.runs,
        "client": cfg.client,
        "sizes": {
            "A1": cfg.n_a1,
            "A16": cfg.n_a16,
            "B": cfg.n_b,
            "C8": cfg.n_c8,
            "C8b": cfg.n_c8b,
            "D samples": cfg.d_samples,
            "E small": cfg.e_small,
            "E big": cfg.big,
            "E fetch samples": cfg.e_samples,
            "E enqueue": cfg.e_enqueue,
        },
    }


def database_option(value: str) -> str | None:
    """--database: `sqlite` -> None; `postgres` or `postgres=ADMIN_URL` -> the admin URL."""
    if value == "sqlite":
        return None
    name, _, url = value.partition("=")
    if name in ("postgres", "postgresql") and not value.startswith(("postgres:", "postgresql:")):
        return url or DEFAULT_ADMIN_URL
    if value.startswith(("postgres://", "postgresql://")):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r}: expected sqlite, postgres or postgres=postgresql://USER@HOST:PORT/DB"
    )


def add_options(parser: argparse.ArgumentParser, every: list[Workload]) -> None:
    """The options that `bench.run` shares with `bench.cluster`."""
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run: a smoke test")
    parser.add_argument(
        "--only", help="comma-separated workloads: " + ",".join(w.key for w in every)
    )
    parser.add_argument("--runs", type=int, help="runs per workload (default 3; 1 with --quick)")
    parser.add_argument("--json", type=Path, help="also write every run and the summary here")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="A16/C8/C8b client: raw asyncio HTTP/1.1 (default) or httpx.AsyncClient",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra `jobbie server` argument, repeatable (e.g. --server-arg=--durability=fast)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the per-run data directories are made (default: the temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep data directories and server logs")


def select_workloads(
    parser: argparse.ArgumentParser, only: str | None, every: list[Workload], default: list[str]
) -> list[Workload]:
    """The workloads named by --only (any of `every`), else those of `default`."""
    wanted = [k.strip().lower() for k in only.split(",") if k.strip()] if only else default
    wanted = [k.lower() for k in wanted]
    known = {w.key.lower(): w for w in every}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; known: {[w.key for w in every]}")
    return [w for w in every if w.key.lower() in wanted]


def config_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    """The sizes and options of `add_options`'s arguments (SQLite, one server)."""
    quick = args.quick
    runs = args.runs if args.runs is not None else (1 if quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    big = getattr(args, "big", None)
    return Config(
        runs=runs,
        client=args.client,
        big=big if big is not None else (100_000 if quick else 1_000_000),
        n_a1=300 if quick else 2_000,
        n_a16=1_000 if quick else 10_000,
        n_b=5_000 if quick else 50_000,
        n_c8=1_000 if quick else 5_000,
        n_c8b=2_000 if quick else 20_000,
        d_samples=50 if quick else 200,
        e_small=10_000,
        e_samples=100 if quick else 500,
        e_enqueue=300 if quick else 2_000,
        server_args=tuple(args.server_arg),
        data_root=args.data_root,
        keep=args.keep,
    )


def parse_args(argv: list[str] | None) -> tuple[Config, list[Workload], Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    every = [*WORKLOADS, *client_workloads()]
    add_options(parser, every)
    parser.add_argument(
        "--big",
        type=int,
        help="E: pending jobs in the big table (default 1,000,000; 100,000 with --quick)",
    )
    parser.add_argument(
        "--database",
        type=database_option,
        default=None,
        metavar="sqlite|postgres[=ADMIN_URL]",
        help="the store: sqlite (default; a fresh data directory per run) or postgres (a fresh "
        f"database per run, created and dropped through ADMIN_URL, default {DEFAULT_ADMIN_URL})",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="servers per run, all on the run's PostgreSQL database (default 1); the drain and "
        "16-client workloads spread their connections across them, D2 measures the pickup "
        "from one server to the other",
    )
    args = parser.parse_args(argv)
    if args.servers < 1 or (args.servers > 1 and args.database is None):
        parser.error("--servers above 1 needs --database postgres (SQLite serves one server)")
    if args.servers > len(NAMES):
        parser.error(f"--servers: at most {len(NAMES)}")
    # D2 needs two servers: left out of the default selection on one.
    default = [w.key for w in every if w.key != "D2" or args.servers > 1]
    selected = select_workloads(parser, args.only, every, default)
    if args.servers < 2 and any(w.key == "D2" for w in selected):
        parser.error("D2 (pickup across servers) needs --database postgres --servers 2")
    cfg = replace(config_from(args, parser), database=args.database, servers=args.servers)
    return cfg, selected, args.json


def main(argv: list[str] | None = None) -> int:
    cfg, selected, json_path = parse_args(argv)
    cfg.data_root.mkdir(parents=True, exist_ok=True)
    try:
        info = meta(cfg)
    except db_errors() as exc:
        print(f"PostgreSQL does not answer at {cfg.database}: {exc}", file=sys.stderr)
        return 2
    print(
        f"Jobbie bench: Python {info['python']}, SQLite {info['sqlite']}, {info['cpus']} CPUs, "
        f"data under {cfg.data_root} ({info['data_root_fs']}), runs {cfg.runs}, "
        f"server args {list(cfg.server_args) or '(defaults: durability full)'}"
    )
    if info["data_root_fs"] in ("tmpfs", "ramfs"):
        print("WARNING: the data root is in memory: fsync is free and FULL durability is moot")
    if info["postgres"] is not None:
        print(
            f"Store: PostgreSQL, {cfg.servers} server(s) per run on a fresh database "
            f"(jobbie_bench_*); {info['postgres']}"
        )
    print(f"A16/C8/C8b client: {client_label(cfg.client, 16)} (8 for C8/C8b)")
    outcomes = {w.key: Outcome(w.key) for w in selected}
    t_start = pc()
    # Runs are interleaved (A1, A16, ..., then A1 again) so slow drift hits every workload alike.
    for index in range(cfg.runs):
        for workload in selected:
            outcome = outcomes[workload.key]
            if outcome.error is None:
                run_once(cfg, workload, index, outcome)
    rows = summary_rows(list(outcomes.values()))
    print(f"\nSummary: median of {cfg.runs} run(s), min-max; total {pc() - t_start:.0f} s")
    print_table(rows, cfg.runs)
    from bench import clients

    clients.print_targets(rows)
    print(
        "CPU columns: % of one core over the timed window (this machine has "
        f"{info['cpus']}); other = other processes meanwhile (noise); srv µs/job = server CPU "
        "per job."
    )
    issues: dict[str, list[str]] = {}
    for outcome in outcomes.values():
        for text in sorted({r.note for r in outcome.results if r.note}):
            print(f"  {outcome.key}: {text}")
        for text in sorted({i for rec in outcome.records for i in rec.get("issues", [])}):
            issues.setdefault(text, []).append(outcome.key)
    for text, keys in issues.items():
        print(f"WARNING ({', '.join(keys)}): {text}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        records = [r for o in outcomes.values() for r in o.records]
        json_path.write_text(json.dumps({"meta": info, "summary": rows, "runs": records}, indent=2))
        print(f"\nwrote {json_path}")
    failed = [o.key for o in outcomes.values() if o.error is not None]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run the importable module's main, so that bench/clients.py (which imports bench.run)
    # shares its classes (BenchError, Workload...) instead of a second copy in __main__.
    from bench.run import main as module_main

    sys.exit(module_main())

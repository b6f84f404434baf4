"""Peer job systems for `bench.compare`: Huey (SqliteHuey) and RQ (Redis), driven for real.

Each run of each workload gets a fresh temporary directory holding a generated task module, the
peer's database (Huey) and the peer processes' logs. Huey is enqueued in-process (that is how
Huey is used) and consumed by a real `huey_consumer` subprocess (8 threads); RQ is enqueued
in-process against the Redis at 127.0.0.1:6379 (a dedicated db, flushed before every run) and
consumed by `rq.SimpleWorker` subprocesses. Every subprocess runs in its own session and is
killed as a process group when the run ends, fails or is interrupted (`kill_all`).

Timing follows `bench.run`: enqueue rates are wall time around the calls; drains are first job
start -> last job end as recorded by the jobs themselves (Huey: the no-op task stamps
CLOCK_MONOTONIC; RQ: the jobs' own `started_at` / `ended_at`); pickup latency is the start of the
enqueue call -> the handler's first line (CLOCK_MONOTONIC in both processes). Every workload
checks that the work was done: queue lengths, one execution per job, no failures.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.run import CLK_TCK, BenchError, check, machine_cpu, percentile

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
mono = time.monotonic  # CLOCK_MONOTONIC: comparable across processes on Linux


# --- processes -----------------------------------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def spawn(
    cmd: Sequence[str], log_path: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session (its own process group), output to `log_path`."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def kill_groups(procs: Sequence[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    """SIGTERM each process group; SIGKILL the groups whose leader is still up after `grace` s."""

    def signal_all(sig: signal.Signals) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    signal_all(signal.SIGTERM)
    deadline = mono() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - mono()))
    signal_all(signal.SIGKILL)  # the leaders that ignored SIGTERM, and any stragglers
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def kill_all() -> None:
    """Kill every peer process group still alive (on exit, error or interrupt)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    kill_groups(procs, grace=2.0)


def log_tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def child_env(pythonpath: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Sequence[subprocess.Popen[bytes]] = (),
    logs: Sequence[Path] = (),
    interval: float = 0.02,
) -> None:
    """Poll until `predicate()` holds; fail if it takes longer than `timeout` or a process dies."""
    deadline = mono() + timeout
    while not predicate():
        for k, proc in enumerate(alive):
            if proc.poll() is not None:
                tail = log_tail(logs[k]) if k < len(logs) else ""
                raise BenchError(f"{what}: peer process exited with {proc.returncode}:\n{tail}")
        if mono() > deadline:
            tails = "\n".join(log_tail(p) for p in logs)
            raise BenchError(f"{what}: not done after {timeout:.0f} s\n{tails}".rstrip())
        time.sleep(interval)


# --- CPU accounting ------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone or unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class CpuWindow:
    """Like `bench.run.Window`, for a set of peer processes (consumer, workers, redis-server)."""

    pids: list[int]
    t0: float = 0.0
    wall: float = 0.0
    sys_cpu: float = 0.0
    cli_cpu: float = 0.0
    other_cpu: float = 0.0
    steal: float = 0.0
    _sys0: float = 0.0
    _cli0: float = 0.0
    _busy0: float = 0.0
    _steal0: float = 0.0

    def _sys(self) -> float:
        return sum(proc_cpu(p) for p in self.pids)

    def start(self) -> CpuWindow:
        self._busy0, self._steal0 = machine_cpu()
        self._sys0, self._cli0, self.t0 = self._sys(), time.process_time(), time.perf_counter()
        return self

    def stop(self) -> CpuWindow:
        self.wall = time.perf_counter() - self.t0
        self.sys_cpu = self._sys() - self._sys0
        self.cli_cpu = time.process_time() - self._cli0
        busy, steal = machine_cpu()
        self.other_cpu = max(0.0, busy - self._busy0 - self.sys_cpu - self.cli_cpu)
        self.steal = steal - self._steal0
        return self

    def percent(self) -> dict[str, float]:
        """System-under-test, client and other CPU as % of one core over the window."""
        if self.wall <= 0:
            return {}
        return {
            "sys": 100 * self.sys_cpu / self.wall,
            "client": 100 * self.cli_cpu / self.wall,
            "other": 100 * self.other_cpu / self.wall,
            "steal": 100 * self.steal / self.wall,
        }


@dataclass
class PeerResult:
    """One run of one workload on one peer: metric values plus the CPU window (if any)."""

    values: dict[str, float]
    ops: int = 0
    window: CpuWindow | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


class NotApplicable(Exception):
    """The peer has no way to do this workload (e.g. no batch enqueue API)."""


# --- shared helpers ------------------------------------------------------------------------------


def run_threads(
    n_threads: int, setup: Callable[[int], Callable[[], None]], window: CpuWindow
) -> None:
    """`n_threads` producers: each runs `setup(k)` (untimed), then its returned loop, timed."""
    barrier = threading.Barrier(n_threads + 1)
    failures: list[str] = []

    def body(k: int) -> None:
        loop: Callable[[], None] | None = None
        try:
            loop = setup(k)
        except Exception as exc:
            failures.append(f"setup: {exc!r}")
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        if loop is None:
            return
        try:
            loop()
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=body, args=(k,), daemon=True) for k in range(n_threads)]
    for t in threads:
        t.start()
    window.start()
    barrier.wait(timeout=60)
    for t in threads:
        t.join(timeout=600)
        check(not t.is_alive(), "a producer thread did not finish within 600 s")
    window.stop()
    check(not failures, f"{len(failures)} producer error(s), first: {failures[:1]}")


def read_stamps(path: Path) -> dict[int, float]:
    """`i t` lines written by the stamp task -> {i: t}; a repeated i is a double execution."""
    stamps: dict[int, float] = {}
    if not path.exists():
        return stamps
    for line in path.read_text().splitlines():
        if not line.endswith("."):  # the task terminates each line with " ."
            continue
        i_s, t_s, _ = line.split()
        i = int(i_s)
        check(i not in stamps, f"job {i} ran twice")
        stamps[i] = float(t_s)
    return stamps


def pickup_schedule(
    enqueue: Callable[[int], None],
    stamps: Path,
    samples: int,
    warm: int = 5,
    period: float = 0.020,
    alive: Sequence[subprocess.Popen[bytes]] = (),
    logs: Sequence[Path] = (),
) -> PeerResult:
    """D: one enqueue every `period` on a fixed schedule; p50/p99 of enqueue start -> handler."""
    total = warm + samples
    sent: list[tuple[int, float]] = []
    begin = mono() + 0.2
    for i in range(total):
        delay = begin + i * period - mono()
        if delay > 0:
            time.sleep(delay)
        t0 = mono()
        enqueue(i)
        sent.append((i, t0))
    wait_for(
        lambda: len(read_stamps(stamps)) >= total + 1,  # + the readiness job (-1)
        30,
        "D: waiting for every job to start",
        alive,
        logs,
    )
    got = read_stamps(stamps)
    check(len(got) == total + 1, f"D: {len(got)} jobs ran, {total + 1} were sent")
    lat = [(got[i] - t0) * 1000 for i, t0 in sent[warm:]]
    check(min(lat) > 0, "D: a job started before its enqueue (clock mix-up)")
    return PeerResult(
        {"D p50": percentile(lat, 0.5), "D p99": percentile(lat, 0.99)},
        extra={"p90_ms": percentile(lat, 0.9), "max_ms": max(lat), "samples": len(lat)},
    )


# --- Huey ----------------------------------------------------------------------------------------

HUEY_MODULE = "jobbie_peer_huey"
HUEY_TEMPLATE = '''"""Generated by bench/peers.py: SqliteHuey (defaults, file DB), no-op tasks."""

import os
import threading
import time

from huey import SqliteHuey

DB = {db!r}
DONE = {done!r}
STAMPS = {stamps!r}
TARGET = {target!r}
GATE = os.environ.get("JOBBIE_PEER_GATE")

if GATE:  # only in the consumer: hold start-up until the bench opens the gate
    open(GATE + ".ready", "w").close()
    _deadline = time.monotonic() + 120
    while not os.path.exists(GATE) and time.monotonic() < _deadline:
        time.sleep(0.002)

huey = SqliteHuey("bench", filename=DB)

_lock = threading.Lock()
_seen = set()
_calls = 0
_first = None
_last = 0.0


@huey.task(name="noop")
def noop(i):
    global _calls, _first, _last
    t0 = time.monotonic()  # the job's work: none
    t1 = time.monotonic()
    with _lock:
        _calls += 1
        _seen.add(i)
        if _first is None or t0 < _first:
            _first = t0
        _last = max(_last, t1)
        if _calls == TARGET:
            with open(DONE + ".tmp", "w") as f:
                f.write(f"{{_first!r}} {{_last!r}} {{_calls}} {{len(_seen)}}")
            os.replace(DONE + ".tmp", DONE)


@huey.task(name="stamp")
def stamp(i):
    t = time.monotonic()
    with open(STAMPS, "a") as f:
        f.write(f"{{i}} {{t!r}} .\\n")
'''


class HueyRun:
    """One fresh SqliteHuey: a temp dir with the generated module, its DB and the consumer log."""

    def __init__(self, data_root: Path, keep: bool, target: int = 0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobbie-peer-huey-", dir=data_root))
        self.keep = keep
        self.done = self.dir / "done.txt"
        self.stamps = self.dir / "stamps.txt"
        self.gate = self.dir / "gate"
        self.log = self.dir / "consumer.log"
        path = self.dir / f"{HUEY_MODULE}.py"
        path.write_text(
            HUEY_TEMPLATE.format(
                db=str(self.dir / "huey.db"),
                done=str(self.done),
                stamps=str(self.stamps),
                target=target,
            )
        )
        # Loaded under the consumer's module name, so task identifiers match; not in sys.modules.
        spec = importlib.util.spec_from_file_location(HUEY_MODULE, path)
        assert spec is not None and spec.loader is not None
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.huey: Any = self.module.huey
        self.consumer: subprocess.Popen[bytes] | None = None

    def start_consumer(
        self, workers: int, gated: bool = False, quiet: bool = True
    ) -> subprocess.Popen[bytes]:
        env = child_env(self.dir)
        if gated:
            env["JOBBIE_PEER_GATE"] = str(self.gate)
        cmd = [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            f"{HUEY_MODULE}.huey",
            "--workers",
            str(workers),
            "--worker-type",
            "thread",
        ]
        if quiet:  # WARNING level: no log lines per job (Huey's default is INFO: 2 per job)
            cmd.append("--quiet")
        self.consumer = spawn(cmd, self.log, env, self.dir)
        return self.consumer

    def close(self) -> None:
        if self.consumer is not None:
            kill_groups([self.consumer])
        with contextlib.suppress(Exception):
            self.huey.storage.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class HueyPeer:
    name = "Huey"

    def __init__(
        self,
        data_root: Path,
        keep: bool,
        workers: int = 8,
        d_workers: int = 1,
        quiet: bool = True,
    ) -> None:
        self.data_root = data_root
        self.keep = keep
        self.workers = workers
        self.d_workers = d_workers
        self.quiet = quiet

    def unavailable(self) -> str | None:
        return None

    def describe(self) -> str:
        return (
            f"SqliteHuey (default settings: WAL, synchronous FULL; file DB in a temp dir), "
            f"in-process enqueue, huey_consumer {self.workers} threads "
            f"({'--quiet' if self.quiet else 'default INFO logging'}); "
            f"D: {self.d_workers} thread(s), default polling (initial delay 0.1 s, backoff 1.15)"
        )

    def a1(self, n: int) -> PeerResult:
        run = HueyRun(self.data_root, self.keep)
        try:
            noop = run.module.noop
            for i in range(20):
                noop(-1 - i)  # warm-up: connection, tables, first WAL growth
            window = CpuWindow([]).start()
            for i in range(n):
                noop(i)
            window.stop()
            pending = run.huey.pending_count()
            check(pending == n + 20, f"Huey A1: {pending} pending, expected {n + 20}")
            return PeerResult({"A1": n / window.wall}, n, window, note="in-process, no consumer")
        finally:
            run.close()

    def a16(self, n: int, conc: int = 16) -> PeerResult:
        run = HueyRun(self.data_root, self.keep)
        try:
            noop = run.module.noop
            items = iter(range(n))

            def setup(k: int) -> Callable[[], None]:
                noop(-1 - k)  # warm-up (SqliteHuey shares one connection behind a lock)

                def loop() -> None:
                    for i in items:  # shared iterator: each job goes to one producer
                        noop(i)

                return loop

            window = CpuWindow([])
            run_threads(conc, setup, window)
            pending = run.huey.pending_count()
            check(pending == n + conc, f"Huey A16: {pending} pending, expected {n + conc}")
            return PeerResult(
                {"A16": n / window.wall}, n, window, note=f"{conc} threads in one process"
            )
        finally:
            run.close()

    def b(self, n: int) -> PeerResult:
        raise NotApplicable("no batch enqueue API")

    def c8b(self, n: int) -> PeerResult:
        raise NotApplicable("no batched fetch")

    def c8(self, n: int) -> PeerResult:
        run = HueyRun(self.data_root, self.keep, target=n)
        try:
            noop = run.module.noop
            for i in range(n):  # untimed: pre-enqueue N jobs
                noop(i)
            check(run.huey.pending_count() == n, "Huey C: pre-enqueue count")
            consumer = run.start_consumer(self.workers, gated=True, quiet=self.quiet)
            ready = Path(str(run.gate) + ".ready")
            wait_for(ready.exists, 60, "Huey C: consumer start-up", [consumer], [run.log])
            window = CpuWindow([consumer.pid]).start()
            run.gate.touch()  # the consumer imports are done: let it start its workers
            wait_for(run.done.exists, 60 + n / 50, "Huey C: drain", [consumer], [run.log], 0.01)
            window.stop()
            first_s, last_s, calls_s, unique_s = run.done.read_text().split()
            first, last, calls, unique = float(first_s), float(last_s), int(calls_s), int(unique_s)
            check(calls == n and unique == n, f"Huey C: {calls} executions of {unique} jobs")
            check(run.huey.pending_count() == 0, "Huey C: jobs left in the queue")
            return PeerResult(
                {"C8": n / (last - first)},
                n,
                window,
                note=f"first job start -> last job end; consumer {self.workers} threads",
                extra={"drain_s": last - first},
            )
        finally:
            run.close()

    def d(self, samples: int) -> PeerResult:
        run = HueyRun(self.data_root, self.keep)
        try:
            stamp = run.module.stamp
            consumer = run.start_consumer(self.d_workers, quiet=self.quiet)
            stamp(-1)  # readiness: the consumer has started and runs jobs
            wait_for(run.stamps.exists, 60, "Huey D: consumer start-up", [consumer], [run.log])
            result = pickup_schedule(stamp, run.stamps, samples, alive=[consumer], logs=[run.log])
            result.note = f"{self.d_workers} consumer thread(s), default polling"
            return result
        finally:
            run.close()


# --- RQ ------------------------------------------------------------------------------------------

RQ_MODULE = "jobbie_peer_rq"
RQ_TASKS = '''"""Generated by bench/peers.py: RQ no-op tasks."""

import time


def noop(i):
    return None


def stamp(path, i):
    t = time.monotonic()
    with open(path, "a") as f:
        f.write(f"{i} {t!r} .\\n")
'''
RQ_WORKER = '''"""Generated by bench/peers.py: one rq.SimpleWorker, optionally held at a gate."""

import sys

import redis
from rq import Queue, SimpleWorker

url, queue, ready, gate, level = sys.argv[1:6]
conn = redis.Redis.from_url(url)
worker = SimpleWorker([Queue(queue, connection=conn)], connection=conn)
conn.rpush(ready, worker.name)
if gate != "-" and conn.blpop([gate], timeout=120) is None:
    sys.exit("gate never opened")
worker.work(logging_level=level)
'''


class RQPeer:
    name = "RQ"

    def __init__(
        self,
        data_root: Path,
        keep: bool,
        db: int = 13,
        workers: int = 8,
        d_workers: int = 1,
        quiet: bool = True,
    ) -> None:
        self.data_root = data_root
        self.keep = keep
        self.log_level = "WARNING" if quiet else "INFO"
        self.db = db
        self.workers = workers
        self.d_workers = d_workers
        self.url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        self._down: str | None = None
        self.conn: Any = None
        self.redis_pid: int | None = None
        try:
            import redis
            import rq  # noqa: F401
        except ImportError as exc:
            self._down = f"n/a (not installed: {exc.name}; pip install -e '.[bench]')"
            return
        self.conn = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=30)
        try:
            self.conn.ping()
            self.redis_pid = int(self.conn.info("server")["process_id"])
        except redis.RedisError:
            self._down = "n/a (redis down)"

    def unavailable(self) -> str | None:
        return self._down

    def describe(self) -> str:
        return (
            f"RQ on Redis {REDIS_HOST}:{REDIS_PORT} db {self.db} (flushed before every run), "
            f"in-process enqueue, {self.workers} rq.SimpleWorker processes; "
            f"D: {self.d_workers} SimpleWorker(s); workers log at {self.log_level}"
        )

    def _fresh(self) -> tuple[Path, Any]:
        """Flush our Redis db and make the run's temp dir with the task module."""
        from rq import Queue

        self.conn.ping()
        self.conn.flushdb()
        root = Path(tempfile.mkdtemp(prefix="jobbie-peer-rq-", dir=self.data_root))
        (root / f"{RQ_MODULE}.py").write_text(RQ_TASKS)
        (root / "jobbie_peer_rq_worker.py").write_text(RQ_WORKER)
        return root, Queue

    def _cleanup(self, root: Path, procs: list[subprocess.Popen[bytes]]) -> None:
        kill_groups(procs)
        with contextlib.suppress(Exception):
            self.conn.flushdb()
        if not self.keep:
            shutil.rmtree(root, ignore_errors=True)

    def _start_workers(
        self, root: Path, queue: str, count: int, gated: bool
    ) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
        procs, logs = [], []
        ready, gate = "jobbie-bench:ready", "jobbie-bench:gate" if gated else "-"
        for k in range(count):
            log = root / f"worker{k}.log"
            script = "jobbie_peer_rq_worker.py"
            cmd = [sys.executable, script, self.url, queue, ready, gate, self.log_level]
            procs.append(spawn(cmd, log, child_env(root), root))
            logs.append(log)
        wait_for(lambda: self.conn.llen(ready) >= count, 60, "RQ worker start-up", procs, logs)
        return procs, logs

    def _pids(self, procs: Sequence[subprocess.Popen[bytes]] = ()) -> list[int]:
        return [p.pid for p in procs] + ([self.redis_pid] if self.redis_pid else [])

    def a1(self, n: int) -> PeerResult:
        root, queue_cls = self._fresh()
        try:
            q = queue_cls("a1", connection=self.conn)
            warm = queue_cls("warmup", connection=self.conn)
            for i in range(20):
                warm.enqueue(f"{RQ_MODULE}.noop", i)
            window = CpuWindow(self._pids()).start()
            for i in range(n):
                q.enqueue(f"{RQ_MODULE}.noop", i)
            window.stop()
            check(q.count == n, f"RQ A1: {q.count} queued, expected {n}")
            return PeerResult({"A1": n / window.wall}, n, window, note="no workers running")
        finally:
            self._cleanup(root, [])

    def a16(self, n: int, conc: int = 16) -> PeerResult:
        import redis

        root, queue_cls = self._fresh()
        try:
            items = iter(range(n))

            def setup(k: int) -> Callable[[], None]:
                conn = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.db)
                q = queue_cls("a16", connection=conn)
                queue_cls("warmup", connection=conn).enqueue(f"{RQ_MODULE}.noop", -1 - k)

                def loop() -> None:
                    for i in items:
                        q.enqueue(f"{RQ_MODULE}.noop", i)

                return loop

            window = CpuWindow(self._pids())
            run_threads(conc, setup, window)
            count = queue_cls("a16", connection=self.conn).count
            check(count == n, f"RQ A16: {count} queued, expected {n}")
            return PeerResult(
                {"A16": n / window.wall},
                n,
                window,
                note=f"{conc} threads, one Redis connection each",
            )
        finally:
            self._cleanup(root, [])

    def _batches(self, queue_cls: Any, n: int, per_call: int) -> list[list[Any]]:
        return [
            [
                queue_cls.prepare_data(f"{RQ_MODULE}.noop", args=(i,))
                for i in range(lo, min(lo + per_call, n))
            ]
            for lo in range(0, n, per_call)
        ]

    def b(self, n: int, per_call: int = 1000) -> PeerResult:
        root, queue_cls = self._fresh()
        try:
            q = queue_cls("b", connection=self.conn)
            q.enqueue(f"{RQ_MODULE}.noop", -1)  # warm-up
            batches = self._batches(queue_cls, n, per_call)  # like bench.run's pre-encoded bodies
            jobs = 0
            window = CpuWindow(self._pids()).start()
            for batch in batches:
                jobs += len(q.enqueue_many(batch))
            window.stop()
            check(jobs == n and q.count == n + 1, f"RQ B: {q.count} queued, expected {n + 1}")
            return PeerResult({"B": n / window.wall}, n, window, note="Queue.enqueue_many")
        finally:
            self._cleanup(root, [])

    def c8b(self, n: int) -> PeerResult:
        raise NotApplicable("no batched fetch")

    def c8(self, n: int) -> PeerResult:
        from rq.job import Job, JobStatus

        root, queue_cls = self._fresh()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            q = queue_cls("c", connection=self.conn)
            ids = [
                j.id for batch in self._batches(queue_cls, n, 1000) for j in q.enqueue_many(batch)
            ]
            check(q.count == n, f"RQ C: {q.count} queued, expected {n}")
            procs, logs = self._start_workers(root, "c", self.workers, gated=True)
            finished, failed = q.finished_job_registry.key, q.failed_job_registry.key
            window = CpuWindow(self._pids(procs)).start()
            self.conn.rpush("jobbie-bench:gate", *["go"] * self.workers)
            wait_for(
                lambda: self.conn.zcard(finished) + self.conn.zcard(failed) >= n,
                60 + n / 20,
                "RQ C: drain",
                procs,
                logs,
                0.05,
            )
            window.stop()
            check(self.conn.zcard(failed) == 0, f"RQ C: {self.conn.zcard(failed)} jobs failed")
            jobs = Job.fetch_many(ids, connection=self.conn)
            check(all(j is not None for j in jobs), "RQ C: jobs missing from Redis")
            done = [j for j in jobs if j is not None]
            check(all(j.get_status() == JobStatus.FINISHED for j in done), "RQ C: unfinished jobs")
            starts = [j.started_at for j in done if j.started_at is not None]
            ends = [j.ended_at for j in done if j.ended_at is not None]
            check(len(starts) == n and len(ends) == n, "RQ C: jobs without start/end times")
            span = (max(ends) - min(starts)).total_seconds()
            return PeerResult(
                {"C8": n / span},
                n,
                window,
                note=f"first started_at -> last ended_at; {self.workers} SimpleWorker processes",
                extra={"drain_s": span},
            )
        finally:
            self._cleanup(root, procs)

    def d(self, samples: int) -> PeerResult:
        root, queue_cls = self._fresh()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            q = queue_cls("d", connection=self.conn)
            stamps = root / "stamps.txt"
            procs, logs = self._start_workers(root, "d", self.d_workers, gated=False)
            q.enqueue(f"{RQ_MODULE}.stamp", str(stamps), -1)  # readiness
            wait_for(stamps.exists, 60, "RQ D: worker start-up", procs, logs)

            def enqueue(i: int) -> None:
                q.enqueue(f"{RQ_MODULE}.stamp", str(stamps), i)

            result = pickup_schedule(enqueue, stamps, samples, alive=procs, logs=logs)
            result.note = f"{self.d_workers} SimpleWorker(s) blocked in BLPOP"
            return result
        finally:
            self._cleanup(root, procs)

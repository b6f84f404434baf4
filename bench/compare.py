"""Jobbie against Huey and RQ in one run: `python -m bench.compare [--quick] [--json PATH]`.

The workloads of bench/README.md (N = 10,000 no-op jobs; default durability; every
process shares the machine's cores), measured on three systems alternately within each run
(for each run, for each workload: Jobbie, Huey, RQ), median of `--runs` runs with min-max, and
Jobbie's ratio to each peer:

  A1   enqueue, one job per call, 1 producer
  A16  the same with 16 concurrent producers (peers: 16 threads in one process)
  B    batch enqueue, 1,000 jobs per call (RQ: Queue.enqueue_many; Huey: no such API -> n/a)
  C8   drain N queued jobs with concurrency 8, first job start -> last job end
       (Huey: huey_consumer with 8 threads; RQ: 8 rq.SimpleWorker processes)
  C8b  Jobbie's batched drain (fetch count 100 + ack/batch); no peer has one -> n/a
  D    idle pickup latency: one idle worker, one enqueue every 20 ms; p50 / p99 from the start
       of the enqueue call to the handler's start (Jobbie: to the worker's fetch returning)

and what Jobbie's users run (bench/clients.py), each beside the peers' own figure named in it:
U1/U16/UB the shipped Client/AsyncClient enqueueing, W8 and W64 the shipped Worker draining
(sync x8, async x64), WD pickup through the shipped Worker, C8n the raw protocol's unbatched
drain with ack-and-fetch-next.

Jobbie's figures come from `bench.run`'s own workload functions on a fresh server per run; the
peers' from `bench.peers`. If Redis does not answer at 127.0.0.1:6379 the RQ column reads
"n/a (redis down)". For D lower is better, so a Jobbie/peer ratio below 1 means Jobbie wins.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from bench import clients, run
from bench.peers import CpuWindow, HueyPeer, NotApplicable, PeerResult, RQPeer, kill_all


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    workload: str


ROWS = [
    Row("A1", "A1 enqueue, 1 producer", "jobs/s", "A1"),
    Row("A16", "A16 enqueue, 16 producers", "jobs/s", "A16"),
    Row("B", "B batch enqueue, 1,000/call", "jobs/s", "B"),
    Row("C8", "C8 drain, concurrency 8", "jobs/s", "C8"),
    Row("C8b", "C8b drain, batched (100/fetch)", "jobs/s", "C8b"),
    Row("D p50", "D pickup p50 (lower is better)", "ms", "D"),
    Row("D p99", "D pickup p99 (lower is better)", "ms", "D"),
]
WORKLOADS = ["A1", "A16", "B", "C8", "C8b", "D"]
# What users run (the shipped client and worker, bench/clients.py), beside the same peers.
ROWS += [Row(*row) for row in clients.COMPARE_ROWS]
WORKLOADS += clients.COMPARE_WORKLOADS


class System(Protocol):
    name: str

    def unavailable(self) -> str | None: ...

    def describe(self) -> str: ...

    def measure(self, workload: str, index: int) -> PeerResult: ...


class JobbieSystem:
    """`bench.run`'s workloads (fresh server per run, same checks) under the same interface."""

    name = "Jobbie"
    _FN: dict[str, Callable[[run.Config, run.Server], run.RunResult]] = {
        "A1": run.run_a1,
        "A16": run.run_a16,
        "B": run.run_b,
        "C8": run.run_c8,
        "C8b": run.run_c8b,
        "D": run.run_d,
        **clients.COMPARE_FNS,
    }

    def __init__(self, cfg: run.Config) -> None:
        self.cfg = cfg

    def unavailable(self) -> str | None:
        return None

    def describe(self) -> str:
        args = list(self.cfg.server_args) or "(defaults: durability full)"
        return f"jobbie server over HTTP on 127.0.0.1, one fresh server per run, args {args}"

    def measure(self, workload: str, index: int) -> PeerResult:
        outcome = run.Outcome(workload)
        run.run_once(self.cfg, run.Workload(workload, self._FN[workload]), index, outcome)
        if outcome.error is not None:
            raise run.BenchError(outcome.error)
        result = outcome.results[0]
        metrics = [v for v, _ in result.metrics.values()]
        if (shipped := clients.compare_values(workload, result)) is not None:
            values = shipped
        elif workload == "D":
            values = {
                "D p50": result.metrics["D pickup p50"][0],
                "D p99": result.metrics["D pickup p99"][0],
            }
        else:
            values = {workload: metrics[0]}
        window = None
        if result.window is not None:
            w = result.window
            window = CpuWindow([], wall=w.wall, sys_cpu=w.srv_cpu, cli_cpu=w.cli_cpu)
            window.other_cpu, window.steal = w.other_cpu, w.steal
        return PeerResult(values, result.ops, window, note=result.note, extra=result.extra)


class PeerSystem:
    """A `bench.peers` driver under the common interface."""

    def __init__(self, peer: HueyPeer | RQPeer, n: int, samples: int) -> None:
        self.peer = peer
        self.name = peer.name
        self.n = n
        self.samples = samples

    def unavailable(self) -> str | None:
        return self.peer.unavailable()

    def describe(self) -> str:
        return self.peer.describe()

    def measure(self, workload: str, index: int) -> PeerResult:
        p = self.peer
        fns: dict[str, Callable[[], PeerResult]] = {
            "A1": lambda: p.a1(self.n),
            "A16": lambda: p.a16(self.n),
            "B": lambda: p.b(self.n),
            "C8": lambda: p.c8(self.n),
            "C8b": lambda: p.c8b(self.n),
            "D": lambda: p.d(self.samples),
            **clients.peer_fns(p, self.n, self.samples),
        }
        return fns[workload]()


@dataclass
class Cell:
    """All runs of one workload on one system."""

    results: list[PeerResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    na: str | None = None


def describe_run(system: str, workload: str, index: int, runs: int, res: PeerResult) -> str:
    units = {r.key: r.unit for r in ROWS}
    parts = [f"{k} {run.fmt(v, units[k])} {units[k]}" for k, v in res.values.items()]
    w = res.window
    if w is not None and w.wall > 0:
        pct = w.percent()
        parts.append(
            f"{res.ops:,} jobs, CPU window {w.wall:.2f} s: system {pct['sys']:.0f}%, "
            f"client {pct['client']:.0f}%, other processes {pct['other']:.0f}%, "
            f"steal {pct['steal']:.0f}%"
        )
    parts += [f"{k} {v:,.2f}" for k, v in res.extra.items()]
    if res.note:
        parts.append(res.note)
    return f"  {system} {workload} run {index + 1}/{runs}: " + "; ".join(parts)


def measure_cell(
    system: System, workload: str, index: int, runs: int, cell: Cell, records: list[dict[str, Any]]
) -> None:
    record: dict[str, Any] = {"system": system.name, "workload": workload, "run": index + 1}
    try:
        res = system.measure(workload, index)
    except NotApplicable as exc:
        cell.na = f"n/a ({exc})"
        return
    except Exception as exc:  # a peer failing must not stop the comparison
        cell.errors.append(f"{type(exc).__name__}: {exc}")
        record["error"] = cell.errors[-1]
        records.append(record)
        if system.name != "Jobbie":  # bench.run already printed its failure
            print(f"  {system.name} {workload} run {index + 1}: FAILED {cell.errors[-1]}")
        return
    cell.results.append(res)
    record.update(values=res.values, ops=res.ops, extra=res.extra, note=res.note)
    if res.window is not None:
        record.update(
            wall_s=res.window.wall,
            system_cpu_s=res.window.sys_cpu,
            client_cpu_s=res.window.cli_cpu,
            other_processes_cpu_s=res.window.other_cpu,
            steal_s=res.window.steal,
        )
    records.append(record)
    if system.name != "Jobbie":  # bench.run.run_once printed its own line
        print(describe_run(system.name, workload, index, runs, res), flush=True)


def summarize(cell: Cell | None, key: str) -> dict[str, Any]:
    if cell is None:
        return {"text": "-"}
    values = [r.values[key] for r in cell.results if key in r.values]
    if cell.na is not None:
        return {"text": cell.na}
    if not values:
        return {"text": "FAILED" if cell.errors else "-", "errors": cell.errors}
    out: dict[str, Any] = {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }
    if cell.errors:
        out["errors"] = cell.errors
    return out


def cell_text(s: dict[str, Any], unit: str) -> str:
    if "median" not in s:
        return str(s["text"])
    text = run.fmt(s["median"], unit)
    if len(s["values"]) > 1:
        text += f" ({run.fmt(s['min'], unit)}-{run.fmt(s['max'], unit)})"
    if s.get("errors"):
        text += f" [{len(s['errors'])} failed]"
    return text


def ratio_text(j: dict[str, Any], p: dict[str, Any]) -> str:
    if "median" not in j or "median" not in p or p["median"] <= 0:
        return "-"
    return f"{j['median'] / p['median']:.2f}x"


def build_summary(
    systems: list[System], cells: dict[tuple[str, str], Cell], rows: list[Row]
) -> list[dict[str, Any]]:
    summary = []
    for row in rows:
        entry: dict[str, Any] = {"workload": row.key, "label": row.label, "unit": row.unit}
        for system in systems:
            entry[system.name] = summarize(cells.get((system.name, row.workload)), row.key)
        jobbie = entry.get("Jobbie", {})
        for system in systems:
            if system.name != "Jobbie":
                entry[f"Jobbie/{system.name}"] = ratio_text(jobbie, entry[system.name])
        summary.append(entry)
    return summary


def print_tables(
    systems: list[System],
    cells: dict[tuple[str, str], Cell],
    summary: list[dict[str, Any]],
    workloads: list[str],
) -> None:
    names = [s.name for s in systems]
    peers = [n for n in names if n != "Jobbie"]
    head = ["workload", *names] + ([f"Jobbie/{p}" for p in peers] if "Jobbie" in names else [])
    lines = [head, ["---"] * len(head)]
    for entry in summary:
        line = [f"{entry['label']} ({entry['unit']})"]
        line += [cell_text(entry[n], entry["unit"]) for n in names]
        if "Jobbie" in names:
            line += [entry[f"Jobbie/{p}"] for p in peers]
        lines.append(line)
    print_markdown(lines)

    print("\nCPU over the timed window, median % of one core: system under test / client / other")
    cpu_lines = [["workload", *names], ["---"] * (len(names) + 1)]
    for wl in workloads:
        if wl == "D":  # latencies: no CPU window
            continue
        line = [wl]
        for n in names:
            cell = cells.get((n, wl))
            windows = [r.window for r in cell.results if r.window] if cell else []
            pcts = [w.percent() for w in windows if w.wall > 0]
            if not pcts:
                line.append("-")
                continue
            med = {k: statistics.median(p[k] for p in pcts) for k in ("sys", "client", "other")}
            line.append(f"{med['sys']:.0f} / {med['client']:.0f} / {med['other']:.0f}")
        cpu_lines.append(line)
    print_markdown(cpu_lines)


def print_markdown(lines: list[list[str]]) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        if line[0] == "---":
            cells = ["-" * w for w in widths]
        else:
            cells = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
        print("| " + " | ".join(cells) + " |")


# --- machine facts -------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def redis_facts(rq_peer: RQPeer | None) -> dict[str, Any]:
    if rq_peer is None or rq_peer.conn is None or rq_peer.unavailable():
        return {}
    facts: dict[str, Any] = {"db": rq_peer.db}
    try:
        facts["version"] = rq_peer.conn.info("server")["redis_version"]
        cfg = rq_peer.conn.config_get("save")
        cfg.update(rq_peer.conn.config_get("appendonly"))
        facts["persistence"] = {
            k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
            for k, v in cfg.items()
        }
    except Exception as exc:  # CONFIG may be disabled; the facts are informative only
        facts["error"] = repr(exc)
    return facts


def meta(args: argparse.Namespace, n: int, samples: int, rq_peer: RQPeer | None) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_gib": round(mem_total_gib(), 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "data_root": str(args.data_root),
        "data_root_fs": run.filesystem_of(args.data_root),
        "huey": version("huey"),
        "rq": version("rq"),
        "redis_py": version("redis"),
        "redis_server": redis_facts(rq_peer),
        "runs": args.runs,
        "n": n,
        "d_samples": samples,
        "d_workers_peers": args.d_workers,
        "log_level": "WARNING" if args.quiet_logs else "INFO (each system's default)",
        "server_args": list(args.server_arg),
    }


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="N=500, 50 D samples, 1 run")
    parser.add_argument("--runs", type=int, help="runs per workload and system (default 3)")
    parser.add_argument("--n", type=int, help="jobs per workload (default 10,000)")
    parser.add_argument("--samples", type=int, help="D samples (default 200)")
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    parser.add_argument(
        "--systems", default="jobbie,huey,rq", help="comma-separated: jobbie,huey,rq (default all)"
    )
    parser.add_argument("--json", type=Path, help="also write every run and the summary here")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis db for RQ (flushed!)")
    parser.add_argument(
        "--d-workers", type=int, default=1, help="D: peer workers (Huey threads / RQ workers)"
    )
    parser.add_argument(
        "--quiet-logs",
        action="store_true",
        help="every system logs at WARNING (Jobbie without its access log); by default each"
        " logs as it does out of the box (INFO)",
    )
    parser.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG", help="extra jobbie argument"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the per-run data directories go (default: the temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep data directories and logs")
    args = parser.parse_args(argv)
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that kill peers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n = args.n if args.n is not None else (500 if args.quick else 10_000)
    samples = args.samples if args.samples is not None else (50 if args.quick else 200)
    workloads = WORKLOADS
    if args.only:
        wanted = {k.strip().lower() for k in args.only.split(",") if k.strip()}
        workloads = [w for w in WORKLOADS if w.lower() in wanted]
        if not workloads:
            print(f"no known workload in {args.only!r}; known: {WORKLOADS}", file=sys.stderr)
            return 2
    wanted_systems = {s.strip().lower() for s in args.systems.split(",")}
    args.data_root.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)
    atexit.register(kill_all)

    cfg = run.Config(
        runs=args.runs,
        client="raw",
        big=0,
        n_a1=n,
        n_a16=n,
        n_b=n,
        n_c8=n,
        n_c8b=n,
        d_samples=samples,
        e_small=0,
        e_samples=0,
        e_enqueue=0,
        server_args=tuple(args.server_arg)
        + (("--log-level", "warning") if args.quiet_logs else ()),
        data_root=args.data_root,
        keep=args.keep,
    )
    quiet = args.quiet_logs
    rq_peer = RQPeer(
        args.data_root, args.keep, db=args.redis_db, d_workers=args.d_workers, quiet=quiet
    )
    huey_peer = HueyPeer(args.data_root, args.keep, d_workers=args.d_workers, quiet=quiet)
    candidates: list[System] = [
        JobbieSystem(cfg),
        PeerSystem(huey_peer, n, samples),
        PeerSystem(rq_peer, n, samples),
    ]
    systems = [s for s in candidates if s.name.lower() in wanted_systems]
    info = meta(args, n, samples, rq_peer)
    print(
        f"Jobbie vs peers: {info['nproc']} CPUs ({info['cpu_model']}), "
        f"{info['mem_total_gib']} GiB, Python {info['python']}, SQLite {info['sqlite']}, "
        f"data under {args.data_root} ({info['data_root_fs']}); N {n:,}, D samples {samples}, "
        f"runs {args.runs}, workloads {','.join(workloads)}"
    )
    print(
        f"Huey {info['huey']}, RQ {info['rq']}, redis-py {info['redis_py']}, "
        f"Redis server {info['redis_server'] or 'unavailable'}"
    )
    for system in systems:
        print(f"  {system.name}: {system.unavailable() or system.describe()}")

    cells: dict[tuple[str, str], Cell] = {}
    records: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    try:
        for index in range(args.runs):
            for wl in workloads:
                for system in systems:  # Jobbie, Huey, RQ, alternately
                    cell = cells.setdefault((system.name, wl), Cell())
                    if (why := system.unavailable()) is not None:
                        cell.na = why
                        continue
                    if cell.na is None:
                        measure_cell(system, wl, index, args.runs, cell, records)
    finally:
        kill_all()

    rows = [r for r in ROWS if r.workload in workloads]
    summary = build_summary(systems, cells, rows)
    print(
        f"\nSummary: median of {args.runs} run(s) (min-max), N {n:,}; "
        f"total {time.perf_counter() - t_start:.0f} s\n"
    )
    print_tables(systems, cells, summary, workloads)
    print(
        "Ratios are Jobbie's median over the peer's: above 1 Jobbie is faster on rates; on D "
        "(latency) below 1 Jobbie is faster. 'other' = CPU of other processes meanwhile (noise)."
    )
    failed = sorted({f"{s} {w}" for (s, w), c in cells.items() if c.errors})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"meta": info, "summary": summary, "runs": records}, indent=2)
        )
        print(f"\nwrote {args.json}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

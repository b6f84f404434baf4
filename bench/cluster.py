"""SQLite, PostgreSQL and two servers on PostgreSQL in one run: `python -m bench.cluster`.

The workloads of `bench.run` and `bench.clients`, each run on three set-ups, interleaved (for
each run, for each workload: SQLite, PostgreSQL x1, PostgreSQL x2), fresh servers and a fresh
data directory or database per run, median of `--runs` with min-max, and the ratio of each
PostgreSQL set-up to SQLite:

  sqlite  one server, its own data directory (default durability)
  pg      one server on a fresh PostgreSQL database (created and dropped through --database)
  pg2     two servers on one fresh database; the drains and the 16-client enqueues spread their
          connections (W8/W64: one Worker per server) across both; D2 (pg2 only) parks the
          worker's long-poll on server B and enqueues on server A

Default workloads: A16 and U16 (enqueue, 16 clients: raw, shipped AsyncClient), B (batch
enqueue), C8b (batched drain), W8 and W64 (the shipped Worker draining), D and D2 (pickup).
On PostgreSQL each row also gets the database's cost per job: its CPU (µs) and its WAL
(bytes), from which the summary derives what one PostgreSQL core and 1,000 jobs/s mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import run
from bench.postgres import DEFAULT_ADMIN_URL

DEFAULT_WORKLOADS = ["A16", "U16", "B", "C8b", "W8", "W64", "D", "D2"]


@dataclass(frozen=True)
class Backend:
    """One set-up the workloads run on."""

    key: str
    title: str
    servers: int
    postgres: bool


BACKENDS = [
    Backend("sqlite", "SQLite", 1, False),
    Backend("pg", "PG x1", 1, True),
    Backend("pg2", "PG x2", 2, True),
]


def runs_on(backend: Backend, workload: str) -> bool:
    """D2 (pickup across servers) needs two servers."""
    return workload != "D2" or backend.servers > 1


def merged_rows(
    per_backend: dict[str, list[run.Outcome]], backends: list[Backend]
) -> list[dict[str, Any]]:
    """One row per metric label: each backend's summary row under its key, in first-seen order."""
    rows: dict[str, dict[str, Any]] = {}
    for backend in backends:
        for row in run.summary_rows(per_backend[backend.key]):
            entry = rows.setdefault(row["label"], {"label": row["label"]})
            entry[backend.key] = row
            entry.setdefault("unit", row.get("unit"))
    return list(rows.values())


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if "error" in row:
        return "FAILED"
    return run.fmt(row["median"], row["unit"])


def _ratio(row: dict[str, Any], key: str) -> str:
    a, b = row.get(key), row.get("sqlite")
    if a is None or b is None or "median" not in a or "median" not in b or b["median"] <= 0:
        return "-"
    return f"{a['median'] / b['median']:.2f}"


def print_comparison(rows: list[dict[str, Any]], backends: list[Backend], runs: int) -> None:
    """Medians side by side, the PostgreSQL set-ups' ratios to SQLite, and their cost per job."""
    pg = [b for b in backends if b.postgres]
    ratios = [b for b in pg if any(x.key == "sqlite" for x in backends)]
    width = max(len(r["label"]) for r in rows)
    head = f"{'workload':<{width}}  {'unit':<6}" + "".join(f"  {b.title:>9}" for b in backends)
    head += "".join(f"  {b.title + '/SQL':>10}" for b in ratios)
    head += "".join(f"  {b.title + ' µs':>9}  {b.title + ' WAL':>10}" for b in pg)
    print(f"\nMedians of {runs} run(s); for ms rows lower is better. 'PG µs' = PostgreSQL CPU per")
    print("job, 'PG WAL' = WAL bytes per job (rows with a CPU window only).\n")
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['label']:<{width}}  {r['unit'] or '':<6}"
        line += "".join(f"  {_cell(r.get(b.key)):>9}" for b in backends)
        line += "".join(f"  {_ratio(r, b.key):>10}" for b in ratios)
        for b in pg:
            cell = r.get(b.key) or {}
            us, wal = cell.get("pg_us_per_job"), cell.get("wal_bytes_per_job")
            line += f"  {'-' if us is None else f'{us:,.0f}':>9}"
            wal_text = "-" if wal is None else f"{wal:,.0f}{_mark(cell)}"
            line += f"  {wal_text:>10}"
        print(line)
    if any(_mark(r.get(b.key) or {}) for r in rows for b in pg):
        print(
            "* WAL of the whole PostgreSQL cluster (pg_waldump could not read the window's range)"
        )


def _mark(cell: dict[str, Any]) -> str:
    return "*" if cell.get("wal_cluster_wide") else ""


def print_sizing(rows: list[dict[str, Any]], backends: list[Backend]) -> None:
    """Per-job cost on PostgreSQL, turned into what a reader sizes a deployment with."""
    lines = []
    for r in rows:
        for b in (b for b in backends if b.postgres):
            cell = r.get(b.key) or {}
            us, wal = cell.get("pg_us_per_job"), cell.get("wal_bytes_per_job")
            srv = cell.get("server_us_per_job")
            if wal is None:
                continue
            core = f"{1e6 / us:>9,.0f}" if us else f"{'n/a':>9}"
            lines.append(
                f"  {r['label']:<36} {b.title:<6} jobbie {srv or 0:>6,.0f} µs  "
                f"PostgreSQL {us or 0:>6,.0f} µs  WAL {wal:>7,.0f} B{_mark(cell) or ' '}  "
                f"{core} jobs/s per PG core   {wal * 1000 / 2**20:>6.1f} MiB WAL/s at 1k jobs/s"
            )
    # A job's whole life: one of the enqueue workloads plus one of the drains.
    lives = [("A16", "C8b"), ("B", "C8b"), ("U16", "W64"), ("U16", "W8")]
    for enqueue, drain in lives:
        for b in (b for b in backends if b.postgres):
            parts = [_cost(rows, enqueue, b.key), _cost(rows, drain, b.key)]
            if any(p is None for p in parts):
                continue
            srv, us, wal = (sum(p[i] for p in parts if p is not None) for i in range(3))
            lines.append(
                f"  {'a job: ' + enqueue + ' + ' + drain:<36} {b.title:<6} jobbie {srv:>6,.0f} µs  "
                f"PostgreSQL {us:>6,.0f} µs  WAL {wal:>7,.0f} B   "
                f"{1e6 / us:>9,.0f} jobs/s per PG core   {wal * 1000 / 2**20:>6.1f} MiB WAL/s "
                "at 1k jobs/s"
            )
    if lines:
        print("\nCost per job (CPU of the Jobbie servers and of PostgreSQL, WAL written):")
        print("\n".join(lines))


def _cost(
    rows: list[dict[str, Any]], workload: str, backend: str
) -> tuple[float, float, float] | None:
    """(Jobbie µs, PostgreSQL µs, WAL bytes) per job of a workload's headline row."""
    for r in rows:
        cell = r.get(backend) or {}
        if r["label"].split(" ", 1)[0] == workload and cell.get("pg_us_per_job"):
            wal, srv = cell.get("wal_bytes_per_job"), cell.get("server_us_per_job")
            if wal is None or srv is None:
                return None
            return float(srv), float(cell["pg_us_per_job"]), float(wal)
    return None


def median_of(rows: list[dict[str, Any]], prefix: str, backend: str) -> float | None:
    for r in rows:
        cell = r.get(backend)
        if r["label"].startswith(prefix) and cell is not None and "median" in cell:
            return float(cell["median"])
    return None


def print_targets(rows: list[dict[str, Any]]) -> None:
    """Issue 12's targets that this run can check."""
    checks: list[tuple[str, float | None, str, bool | None]] = []
    pg, lite = median_of(rows, "C8b ", "pg"), median_of(rows, "C8b ", "sqlite")
    value = None if pg is None or lite is None or lite <= 0 else pg / lite
    checks.append(
        (
            "batched drain (C8b), PG x1 / SQLite",
            value,
            ">= 0.5x",
            None if value is None else value >= 0.5,
        )
    )
    d2 = median_of(rows, "D2 pickup p50", "pg2")
    checks.append(
        ("pickup p50 across servers (D2, PG x2)", d2, "<= 5 ms", None if d2 is None else d2 <= 5)
    )
    known = [c for c in checks if c[1] is not None]
    if known:
        print("\nTargets (medians of this run):")
        for name, value, goal, ok in known:
            assert value is not None
            print(f"  {name:<45} {value:>9.2f}  target {goal:<9} {'met' if ok else 'MISSED'}")


def parse_args(
    argv: list[str] | None,
) -> tuple[run.Config, list[run.Workload], list[Backend], Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    every = [*run.WORKLOADS, *run.client_workloads()]
    run.add_options(parser, every)
    parser.add_argument(
        "--database",
        default=DEFAULT_ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"PostgreSQL admin URL; a fresh database per run (default {DEFAULT_ADMIN_URL})",
    )
    parser.add_argument(
        "--backends",
        default=",".join(b.key for b in BACKENDS),
        help="comma-separated set-ups: sqlite,pg,pg2 (default all three)",
    )
    args = parser.parse_args(argv)
    wanted = [k.strip().lower() for k in args.backends.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in {b.key for b in BACKENDS}]
    if unknown or not wanted:
        parser.error(f"unknown set-up(s) {unknown}; known: sqlite, pg, pg2")
    backends = [b for b in BACKENDS if b.key in wanted]
    selected = run.select_workloads(parser, args.only, every, DEFAULT_WORKLOADS)
    if any(w.key == "E" for w in selected):
        parser.error("E (the million-job table) is not part of this comparison: bench.run --only E")
    cfg = replace(run.config_from(args, parser), database=args.database)
    return cfg, selected, backends, args.json


def main(argv: list[str] | None = None) -> int:
    cfg, selected, backends, json_path = parse_args(argv)
    cfg.data_root.mkdir(parents=True, exist_ok=True)
    configs = {
        b.key: replace(cfg, database=cfg.database if b.postgres else None, servers=b.servers)
        for b in backends
    }
    try:
        info = run.meta(configs[backends[-1].key])
    except run.db_errors() as exc:
        print(f"PostgreSQL does not answer at {cfg.database}: {exc}", file=sys.stderr)
        return 2
    for key in ("backend", "servers"):
        info.pop(key)
    info["backends"] = [b.key for b in backends]
    print(
        f"Jobbie on SQLite and PostgreSQL: Python {info['python']}, SQLite {info['sqlite']}, "
        f"{info['cpus']} CPUs, runs {cfg.runs}, set-ups {', '.join(b.title for b in backends)}, "
        f"server args {list(cfg.server_args) or '(defaults)'}"
    )
    if info["postgres"]:
        print(info["postgres"])
    outcomes = {(b.key, w.key): run.Outcome(w.key) for b in backends for w in selected}
    t_start = run.pc()
    # Interleaved: each workload on every set-up before the next, each run before the next.
    for index in range(cfg.runs):
        for workload in selected:
            for backend in backends:
                outcome = outcomes[(backend.key, workload.key)]
                if not runs_on(backend, workload.key) or outcome.error is not None:
                    continue
                print(f"[{backend.title}]", end="", flush=True)
                run.run_once(configs[backend.key], workload, index, outcome)
    per_backend = {
        b.key: [outcomes[(b.key, w.key)] for w in selected if runs_on(b, w.key)] for b in backends
    }
    rows = merged_rows(per_backend, backends)
    print(f"\nSummary: total {run.pc() - t_start:.0f} s")
    print_comparison(rows, backends, cfg.runs)
    print_sizing(rows, backends)
    print_targets(rows)
    print(
        "\nWAL per job: this database's own records (pg_waldump over each window); marked * "
        "where only the whole cluster's WAL could be read (another database busy meanwhile "
        "inflates it). PostgreSQL CPU leaves out other databases' backends."
    )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        records = [
            {**rec, "backend": key}
            for (key, _), outcome in outcomes.items()
            for rec in outcome.records
        ]
        json_path.write_text(json.dumps({"meta": info, "summary": rows, "runs": records}, indent=2))
        print(f"\nwrote {json_path}")
    failed = [f"{b}:{w}" for (b, w), o in outcomes.items() if o.error is not None]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from bench.cluster import main as module_main

    sys.exit(module_main())

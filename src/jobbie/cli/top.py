"""`jobbie top`: queues and throughput, refreshed in place until q or Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobbie.cli.options import DEFAULT_SERVER, ApiKeyOpt, Output, OutputOpt, ServerOpt
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from jobbie.client import Client
    from jobbie.models import Queue

RATES = ("enqueued", "completed", "failed")


@dataclass(frozen=True, slots=True)
class Sample:
    """The queues and workers as read at one moment."""

    at: datetime
    clock: float
    queues: list[Queue]
    workers: int


def take_sample(client: Client, only: Sequence[str]) -> Sample:
    """Read the queues (those named in `only`, or all) and count the workers."""
    queues = client.queues()
    if only:
        queues = [q for q in queues if q.name in only]
    return Sample(datetime.now(UTC), time.monotonic(), queues, len(client.workers()))


def rates(now: Sample, before: Sample | None) -> dict[str, dict[str, float] | None]:
    """Per queue, jobs per second enqueued, completed and failed since `before`."""
    if before is None:
        return {q.name: None for q in now.queues}
    elapsed = max(now.clock - before.clock, 1e-6)
    old = {q.name: q.totals for q in before.queues}
    found: dict[str, dict[str, float] | None] = {}
    for q in now.queues:
        prev = old.get(q.name)
        found[q.name] = None
        if prev is not None:
            found[q.name] = {
                k: max(getattr(q.totals, k) - getattr(prev, k), 0) / elapsed for k in RATES
            }
    return found


def snapshot(now: Sample, before: Sample | None) -> dict[str, Any]:
    """One refresh as a JSON document (`--output json` prints one per line)."""
    per_queue = rates(now, before)
    return {
        "at": now.at,
        "workers": now.workers,
        "queues": [
            {
                "name": q.name,
                "paused": q.paused,
                "draining": q.draining,
                "counts": q.counts,
                "rates": per_queue[q.name],
            }
            for q in now.queues
        ],
    }


def view(now: Sample, before: Sample | None) -> RenderableType:
    """The screen: a header line, then one row per queue with its counts and rates."""
    from rich.console import Group

    from jobbie.cli.render import queue_status, table

    per_queue = rates(now, before)
    grid = table("QUEUE", "STATUS", "PEND#", "ACTIVE#", "DEAD#", "IN/s#", "DONE/s#", "FAIL/s#")
    grid.columns[0].overflow = "fold"
    totals = dict.fromkeys(RATES, 0.0)
    for q in now.queues:
        r = per_queue[q.name]
        for k in RATES:
            totals[k] += r[k] if r else 0.0
        shown = [f"{r[k]:.1f}" if r else "-" for k in RATES]
        grid.add_row(
            q.name,
            queue_status(q),
            f"{q.counts.pending:,}",
            f"{q.counts.active:,}",
            f"{q.counts.dead:,}",
            *shown,
        )
    # The hint is in the header: the bottom of a long table may be cut off on a short screen.
    header = (
        f"jobbie top {now.at:%H:%M:%S}  {len(now.queues)} queues  {now.workers} workers  "
        f"{totals['enqueued']:.1f} in/s  {totals['completed']:.1f} done/s  q quits"
    )
    return Group(header, "", grid)


def top(
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Only these queues (repeat).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.1)] = 1.0,
    iterations: Annotated[
        int | None,
        typer.Option(help="Stop after this many refreshes (for scripts).", min=1),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """A live view of queues and throughput; q or Ctrl-C quits.

    With --output json, one JSON document per refresh, one per line.
    """
    from jobbie.cli.live import KeyReader
    from jobbie.cli.remote import stdout_console

    remote = Remote(server, api_key, output)
    only = queue or []
    console = stdout_console()
    live: Live | None = None
    with remote.connect() as client, KeyReader() as keys:
        before: Sample | None = None
        done = 0
        try:
            while True:
                now = take_sample(client, only)
                if remote.wants_json:
                    _print_line(snapshot(now, before))
                elif console.is_terminal:
                    live = live or _start_live(console)
                    live.update(view(now, before), refresh=True)
                else:  # a pipe or a file: one screen after the other
                    console.print(view(now, before), "")
                done += 1
                if iterations is not None and done >= iterations:
                    break
                if keys.wait(interval) in ("q", "Q"):
                    break
                before = now
        except KeyboardInterrupt:
            pass  # Ctrl-C is the way out, not an error
        finally:
            if live is not None:
                live.stop()


def _start_live(console: Console) -> Live:
    from rich.live import Live

    live = Live(console=console, auto_refresh=False)
    live.start()
    return live


def _print_line(document: dict[str, Any]) -> None:
    import sys

    import msgspec

    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    sys.stdout.flush()

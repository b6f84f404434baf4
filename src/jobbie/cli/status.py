"""Overview commands: `status` (server, queues and workers at a glance) and `workers`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobbie.cli.options import DEFAULT_SERVER, ApiKeyOpt, Output, OutputOpt, ServerOpt
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from jobbie.models import Queue

STATES = ("scheduled", "pending", "active", "retrying", "completed", "dead", "cancelled")


def count_states(queues: Sequence[Queue]) -> dict[str, int]:
    """Jobs by state, summed over every queue."""
    return {state: sum(getattr(q.counts, state) for q in queues) for state in STATES}


def status(
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """The server's health and mode, jobs by state, every queue and every worker."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        health = client.health()
        cluster = client.cluster_status()
        queues = client.queues()
        workers = client.workers()
    totals = count_states(queues)
    document: dict[str, Any] = {
        "server": {
            "url": server,
            "status": health.status,
            "mode": cluster.mode,
            "backend": cluster.backend,
            "nodes": cluster.nodes,
        },
        "jobs": totals,
        "queues": queues,
        "workers": workers,
    }

    def render(console: Console) -> None:
        from jobbie.cli.render import queues_table, workers_table

        nodes = "single node" if cluster.mode == "single" else f"{len(cluster.nodes)} nodes"
        paused = sum(1 for q in queues if q.paused or q.draining)
        running = sum(w.active_jobs for w in workers)
        console.print(f"server   {server} {health.status} ({cluster.backend}, {nodes})")
        if cluster.mode == "cluster":
            for node in cluster.nodes:
                role = "leader" if node.leader else "follower"
                console.print(f"node     {node.id} at {node.address or '?'} ({role})")
        console.print("jobs     " + ", ".join(f"{n:,} {s}" for s, n in totals.items() if n))
        console.print(f"queues   {len(queues)} ({paused} paused or draining)")
        console.print(f"workers  {len(workers)} ({running:,} jobs running)")
        if queues:
            console.print()
            console.print(queues_table(queues))
        if workers:
            console.print()
            console.print(workers_table(workers))

    remote.emit(document, render)


def workers(
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """The workers the server has seen recently, with their queues and running jobs."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        found = client.workers()

    def render(console: Console) -> None:
        from jobbie.cli.render import workers_table

        console.print(workers_table(found) if found else "no workers seen recently")

    remote.emit({"workers": found}, render)

"""The maintenance pass the scheduler runs every interval, for every backend.

The order matters: due jobs are promoted and cron schedules fire before leases are reclaimed
and waiting jobs expire, so a pass leaves every job in the state the clock says it is in; then
the pruning steps. Each step works in chunks of a few hundred rows, one short write
transaction per chunk, so workers' fetches and acks never wait long behind maintenance; a step
stops after `MAX_CHUNKS` chunks and continues on the next pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from jobbie.store.params import Retention

# Rows per maintenance transaction, and transactions per step in one pass.
CHUNK = 500
MAX_CHUNKS = 40


class MaintenanceBackend(Protocol):
    """One write transaction per call; each returns how many rows it changed (0: done)."""

    async def promote_due(self, limit: int) -> int:
        """Scheduled and retrying jobs whose time has come become pending."""
        ...

    async def fire_schedules(self, limit: int) -> int:
        """Enqueue one job per due cron schedule, once per fire time."""
        ...

    async def reclaim_expired_leases(self, limit: int) -> int:
        """Fail attempts whose lease ran out, as `lease_expired` (checkpoint kept)."""
        ...

    async def expire_waiting_jobs(self, limit: int) -> int:
        """Dead-letter waiting jobs past their `expire_at`."""
        ...

    async def prune_unique_locks(self, limit: int) -> int:
        """Drop expired unique locks."""
        ...

    async def prune_rate_limits(self, limit: int) -> int:
        """Drop throttle records that left their window."""
        ...

    async def prune_keys(self, limit: int) -> int:
        """Drop per-key state of keys with no unfinished jobs, per-minute completions older
        than the previous minute, and per-key throttle records that left their window."""
        ...

    async def prune_events(self, retention: Retention, limit: int) -> int:
        """Drop events past their retention."""
        ...

    async def prune_finished_jobs(self, retention: Retention, limit: int) -> int:
        """Delete finished jobs past their retention."""
        ...

    async def compact_failure_counts(self, limit: int) -> int:
        """Drop failure-count rows that no longer count a job (see each backend's migration)."""
        ...

    async def finish_drains(self) -> int:
        """Draining queues with no active job become paused."""
        ...

    async def prune_workers(self, retention: Retention) -> int:
        """Forget workers not seen within the retention."""
        ...

    async def prune_idle_queues(self, retention: Retention, limit: int) -> int:
        """Forget empty queues with the default configuration, idle past the retention."""
        ...


async def run_maintenance(backend: MaintenanceBackend, retention: Retention) -> dict[str, int]:
    """One pass; returns how many rows each step changed."""
    chunked: dict[str, Callable[[], Awaitable[int]]] = {
        "promoted": lambda: backend.promote_due(CHUNK),
        "schedules_fired": lambda: backend.fire_schedules(CHUNK),
        "reclaimed": lambda: backend.reclaim_expired_leases(CHUNK),
        "expired": lambda: backend.expire_waiting_jobs(CHUNK),
        "unique_locks_pruned": lambda: backend.prune_unique_locks(CHUNK),
        "rate_records_pruned": lambda: backend.prune_rate_limits(CHUNK * 4),
        "key_records_pruned": lambda: backend.prune_keys(CHUNK * 4),
        "events_pruned": lambda: backend.prune_events(retention, CHUNK * 4),
        "jobs_pruned": lambda: backend.prune_finished_jobs(retention, CHUNK),
        "failure_counts_compacted": lambda: backend.compact_failure_counts(CHUNK),
        "queues_pruned": lambda: backend.prune_idle_queues(retention, CHUNK),
    }
    report: dict[str, int] = {}
    for name, step in chunked.items():
        total = 0
        for _ in range(MAX_CHUNKS):
            done = await step()
            total += done
            if done == 0:
                break
        report[name] = total
    report["drains_finished"] = await backend.finish_drains()
    report["workers_pruned"] = await backend.prune_workers(retention)
    return report

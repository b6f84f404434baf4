"""STUB: to be written (PostgreSQL sweep)."""

from __future__ import annotations

from typing import Any


async def finish_drains(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.finish_drains")


async def promote_due(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.promote_due")


async def prune_events(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_events")


async def prune_finished_jobs(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_finished_jobs")


async def prune_idle_queues(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_idle_queues")


async def prune_rate_limits(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_rate_limits")


async def prune_unique_locks(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_unique_locks")


async def prune_workers(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("sweep.prune_workers")

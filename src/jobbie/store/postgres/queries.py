"""STUB: to be written (PostgreSQL queries)."""

from __future__ import annotations

from typing import Any


async def count_matches(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.count_matches")


async def get_batch(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.get_batch")


async def get_bulk(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.get_bulk")


async def get_job(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.get_job")


async def get_queue(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.get_queue")


async def get_schedule(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.get_schedule")


async def last_event_id(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.last_event_id")


async def list_queues(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.list_queues")


async def list_schedules(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.list_schedules")


async def list_workers(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.list_workers")


async def ping(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.ping")


async def read_events(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.read_events")


async def search(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("queries.search")

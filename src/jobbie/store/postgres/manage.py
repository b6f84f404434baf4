"""STUB: to be written (PostgreSQL manage)."""

from __future__ import annotations

from typing import Any


async def cancel_job(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.cancel_job")


async def clear_chunk(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.clear_chunk")


async def delete_job(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.delete_job")


async def delete_queue_chunk(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.delete_queue_chunk")


async def drain(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.drain")


async def move_job(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.move_job")


async def retry_job(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.retry_job")


async def set_concurrency(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.set_concurrency")


async def set_paused(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.set_paused")


async def set_throttle(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("manage.set_throttle")

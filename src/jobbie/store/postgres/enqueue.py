"""STUB: to be written (PostgreSQL enqueue)."""

from __future__ import annotations

from typing import Any


async def enqueue(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("enqueue.enqueue")


async def enqueue_batch(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("enqueue.enqueue_batch")

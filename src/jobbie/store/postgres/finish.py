"""STUB: to be written (PostgreSQL finish)."""

from __future__ import annotations

from typing import Any


async def ack(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.ack")


async def ack_many(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.ack_many")


async def expire_waiting_jobs(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.expire_waiting_jobs")


async def fail(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.fail")


async def reclaim_expired_leases(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.reclaim_expired_leases")


async def release(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish.release")

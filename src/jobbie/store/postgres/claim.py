"""STUB: to be written (PostgreSQL claim)."""

from __future__ import annotations

from typing import Any


async def claim(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("claim.claim")


async def heartbeat(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("claim.heartbeat")

"""STUB: to be written (PostgreSQL finish_many)."""

from __future__ import annotations

from typing import Any


async def ack_many_then_claim(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish_many.ack_many_then_claim")


async def ack_then_claim(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish_many.ack_then_claim")


async def fail_many(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("finish_many.fail_many")

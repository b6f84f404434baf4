"""STUB: to be written (PostgreSQL console)."""

from __future__ import annotations

from typing import Any


async def failure_groups(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("console.failure_groups")


async def list_audit(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("console.list_audit")


async def read_history(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("console.read_history")


async def record_audit(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("console.record_audit")


async def record_history(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("console.record_history")

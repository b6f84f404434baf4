"""STUB: to be written (PostgreSQL schedules)."""

from __future__ import annotations

from typing import Any


async def create(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("schedules.create")


async def delete(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("schedules.delete")


async def fire_due(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("schedules.fire_due")


async def update(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("schedules.update")

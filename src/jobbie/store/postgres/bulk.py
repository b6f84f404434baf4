"""STUB: to be written (PostgreSQL bulk)."""

from __future__ import annotations

from typing import Any

from jobbie.store.postgres.tx import Tx


async def apply(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.apply")


async def matching_seqs(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.matching_seqs")


async def record_end(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.record_end")


async def record_interrupted(tx: Tx, node_id: str) -> int:
    """Fail this node's operations that a restart cut short (other nodes' keep running)."""
    cur = await tx.execute(
        "UPDATE bulk_operations SET status = 'failed', finished_at = %s"
        " WHERE status = 'running' AND node_id = %s",
        (tx.now, node_id),
    )
    return int(cur.rowcount)


async def record_progress(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.record_progress")


async def record_start(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.record_start")


async def still_matching(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("bulk.still_matching")

"""STUB: leader election and cluster membership (to be written)."""

from __future__ import annotations

from jobbie.models import ClusterNode
from jobbie.store.postgres.tx import Database


class Leadership:
    def __init__(self, db: Database, *, node_id: str, address: str) -> None:
        self._db = db
        self.node_id = node_id
        self.address = address

    async def start(self) -> None:
        pass

    async def lead(self) -> bool:
        return True

    async def nodes(self) -> list[ClusterNode]:
        return []

    async def close(self) -> None:
        pass

"""STUB: LISTEN/NOTIFY wake-ups across servers (to be written)."""

from __future__ import annotations

from jobbie.store.base import CommitCallback
from jobbie.store.postgres.database import PoolSettings
from jobbie.store.postgres.tx import Database


class Listener:
    def __init__(
        self, url: str, settings: PoolSettings, db: Database, on_commit: CommitCallback
    ) -> None:
        self._url = url

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

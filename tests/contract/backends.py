"""The store backends the contract suite runs against: the one place to plug in another.

To add a backend, add ONE entry to BACKENDS: its name (also a pytest marker, so
`pytest tests/contract -m postgres` runs only that backend) and an async function that opens a
fresh, empty store on the clock and commit callback it is given. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from jobbie.clock import Clock
from jobbie.store.base import CommitCallback, Store
from jobbie.store.factory import open_store
from tests.contract.support import RETENTION

Opener = Callable[[Path, Clock, CommitCallback], Awaitable[Store]]


async def open_sqlite(tmp: Path, clock: Clock, on_commit: CommitCallback) -> Store:
    """The embedded backend in a fresh data directory."""
    return await open_store(
        database=None,
        data_dir=tmp / "sqlite",
        durable=True,
        retention=RETENTION,
        clock=clock,
        on_commit=on_commit,
    )


# name -> opener of a fresh, empty store. A PostgreSQL backend adds
#   "postgres": open_postgres,   # a fresh database (or schema) per test
# and fails, rather than skips, when its server is unreachable: CI must not pass without it.
BACKENDS: dict[str, Opener] = {
    "sqlite": open_sqlite,
}

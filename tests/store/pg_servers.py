"""Several PostgreSQL stores on one database, as several servers, and claims racing on them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from jobbie.models import FetchedJob
from jobbie.store.params import FetchParams
from jobbie.store.postgres.store import PostgresStore


def with_servers(url: str, n: int, test: Callable[[list[PostgresStore]], Awaitable[None]]) -> None:
    """Run `test` with `n` stores open on the database at `url`, as `n` servers."""

    async def main() -> None:
        stores: list[PostgresStore] = []
        try:
            for i in range(n):
                stores.append(
                    await PostgresStore.open(url, node_id=f"node-{i}", address=f"http://{i}")
                )
            await test(stores)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


async def fetch(store: PostgresStore, worker: str, count: int = 1) -> list[FetchedJob]:
    """Claim up to `count` jobs of queue "q" for `worker`."""
    params = FetchParams(
        queues=("q",), worker_id=worker, hostname=None, lease_ms=60_000, count=count
    )
    return (await store.fetch(params)).jobs


async def at_once(stores: Sequence[PostgresStore], fetches: int, count: int) -> list[FetchedJob]:
    """`fetches` claims started together, spread over the stores; every job handed out."""
    claims = await asyncio.gather(
        *(fetch(stores[n % len(stores)], f"w{n}", count) for n in range(fetches))
    )
    return [job for jobs in claims for job in jobs]

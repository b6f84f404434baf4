"""Long-poll fetches against a real SQLite store: wake-ups sized to the work, and a claim whose
client left is handed back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jobbie.notifier import Notifier
from jobbie.server.longpoll import fetch_jobs
from jobbie.store.base import Claim
from jobbie.store.params import FetchParams, NewJob
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.sqlite.store import SqliteStore


class CountingStore(SqliteStore):
    """The real store, counting claims (each one a writer operation)."""

    claims = 0

    async def fetch(self, params: FetchParams) -> Claim:
        self.claims += 1
        return await super().fetch(params)


def _job(queue: str) -> NewJob:
    return NewJob(queue=queue, payload="{}", priority=2, retry=DEFAULT_RETRY)


def _params(queue: str, worker: str) -> FetchParams:
    return FetchParams(queues=(queue,), worker_id=worker, hostname=None, lease_ms=30_000, count=1)


def test_each_new_job_wakes_about_one_parked_fetch_not_all(tmp_path: Path) -> None:
    parked, jobs = 20, 5

    async def main() -> tuple[int, list[int]]:
        notifier = Notifier()
        store = await CountingStore.open(tmp_path, on_commit=notifier.on_commit)
        assert isinstance(store, CountingStore)
        fetches = [
            asyncio.create_task(fetch_jobs(store, notifier, _params("q", f"w{i}"), 3.0))
            for i in range(parked)
        ]
        while notifier.waiting < parked or store.claims < parked:
            await asyncio.sleep(0.01)
        before = store.claims
        for _ in range(jobs):
            await store.enqueue(_job("q"))
            await asyncio.sleep(0.05)
        claims = store.claims - before
        got = [len(jobs) for jobs in await asyncio.gather(*fetches)]
        await store.close()
        return claims, got

    claims, got = asyncio.run(main())
    assert sorted(got, reverse=True)[:jobs] == [1] * jobs and sum(got) == jobs
    # One claim for the job and one passed on per job (it finds nothing); waking every
    # parked fetch would be 20 per job.
    assert claims <= jobs * 2 + 2, claims


def test_a_job_claimed_while_the_client_leaves_is_released_unburnt(tmp_path: Path) -> None:
    async def main() -> tuple[list[object], str, int]:
        notifier = Notifier()
        left: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        class LeavesDuringClaim(SqliteStore):
            async def fetch(self, params: FetchParams) -> Claim:
                claim = await super().fetch(params)
                if claim.jobs and not left.done():
                    left.set_result(None)  # the client hangs up while the claim runs
                    await asyncio.sleep(0)
                return claim

        store = await LeavesDuringClaim.open(tmp_path, on_commit=notifier.on_commit)
        job_id = (await store.enqueue(_job("q"))).job_id

        async def disconnected() -> None:
            await left

        got = await fetch_jobs(store, notifier, _params("q", "w1"), 1.0, disconnected)
        job = await store.get_job(job_id)
        await store.close()
        return list(got), job.state, job.attempt

    got, state, attempt = asyncio.run(main())
    assert got == []
    assert (state, attempt) == ("pending", 0)

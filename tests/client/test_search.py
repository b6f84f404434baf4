"""Search, page walking, the dead-letter listing and bulk by filter through the client."""

from __future__ import annotations

import asyncio

from jobbie import AsyncClient, Client
from jobbie.client import BulkResult
from tests.serverproc import ServerProcess


def _kill(client: Client, queue: str, n: int) -> list[str]:
    """Enqueue `n` jobs that die on their first failure; return their ids."""
    ids = client.enqueue_batch(
        [{"queue": queue, "payload": {"n": i}, "max_retries": 0} for i in range(n)]
    ).job_ids
    for _ in ids:
        job = client.fetch(queue, timeout=1)
        assert job is not None
        client.fail(job, f"boom {job.payload['n']}")
    return ids


def test_search_pages_and_iter_search_visit_every_job_once(client: Client, queue: str) -> None:
    ids = client.enqueue_batch(
        [
            {"queue": queue, "payload": {"n": i, "plan": "pro" if i % 2 else "free"}}
            for i in range(7)
        ]
    ).job_ids
    page = client.search(queue=queue, state=["pending"], limit=3)
    assert (page.total, len(page.jobs), page.has_more) == (7, 3, True)
    assert [j.payload["n"] for j in page.jobs] == [6, 5, 4]  # newest first by default
    walked = [job.id for job in client.iter_search(queue=queue, page_size=2)]
    assert sorted(walked) == sorted(ids) and len(walked) == 7
    pro = client.search(queue=queue, payload_jq='.plan == "pro" and .n > 2')
    assert sorted(j.payload["n"] for j in pro.jobs) == [3, 5]


def test_dead_lists_the_dead_letter_queue(client: Client, queue: str) -> None:
    ids = _kill(client, queue, 3)
    page = client.dead(queue, limit=2)
    assert page.total == 3 and page.has_more
    rest = client.dead(queue, limit=2, cursor=page.cursor)
    assert sorted(j.id for j in page.jobs + rest.jobs) == sorted(ids)
    assert all(j.errors and j.errors[0].error.startswith("boom") for j in page.jobs)


def test_bulk_by_filter_retries_the_dead(client: Client, queue: str) -> None:
    _kill(client, queue, 4)
    result = client.bulk("retry", filter={"queue": queue, "state": ["dead"]})
    assert isinstance(result, BulkResult)
    assert (result.affected, result.skipped, result.errors) == (4, 0, 0)
    assert client.search(queue=queue, state=["pending"]).total == 4


def test_async_search(server: ServerProcess, queue: str) -> None:
    async def main() -> int:
        async with AsyncClient(server.url) as client:
            await client.enqueue(queue, {"x": 1})
            page = await client.search(queue=queue)
            return page.total

    assert asyncio.run(main()) == 1

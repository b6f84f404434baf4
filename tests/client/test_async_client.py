"""`AsyncClient` mirrors `Client`: the same calls, awaited, against the real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jobbie import AsyncClient, Job, LeaseLost, NotFound, ServerUnreachable, Unavailable
from tests.serverproc import ServerProcess, free_port


def test_async_lifecycle_and_queue_calls(server: ServerProcess, queue: str) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, worker_id="aw") as client:
            assert (await client.health()).status == "ok"
            r = await client.enqueue(queue, {"n": 1}, priority="critical", max_retries=1)
            assert r.status == "pending"
            b = await client.enqueue_batch([{"queue": queue, "payload": i} for i in range(2)])
            assert len(b.job_ids) == 2 and b.batch_id is None

            first = await client.fetch(queue, timeout=1)
            assert isinstance(first, Job) and first.id == r.job_id  # critical goes first
            assert first.worker is not None and first.worker.id == "aw"
            assert await client.heartbeat({first.id: {"checkpoint": {"at": 1}}}) == {first.id: "ok"}
            assert await client.release(first) == "pending"
            again = await client.fetch(queue, timeout=1)
            assert again is not None and again.checkpoint == {"at": 1}
            failed = await client.fail(again, "nope")
            assert (failed.status, failed.attempts_remaining) == ("retrying", 1)

            rest = await client.fetch([queue], count=10, timeout=1)
            assert sorted(j.payload for j in rest) == [0, 1]
            results = await client.ack_batch([(j, j.payload) for j in rest])
            assert {res.status for res in results} == {"completed"}
            with pytest.raises(LeaseLost):
                await client.ack(rest[0], "twice")

            job = await client.get_job(rest[1].id)
            assert (job.state, job.result) == ("completed", rest[1].payload)
            with pytest.raises(NotFound):
                await client.get_job("job_missing")

            assert (await client.pause(queue)).paused
            assert not (await client.resume(queue)).paused
            assert (await client.set_concurrency(queue, 2)).max_concurrency == 2
            throttled = await client.set_throttle(queue, rate=5, period=1.5)
            assert throttled.throttle is not None and throttled.throttle.period == 1.5
            assert (await client.remove_throttle(queue)).throttle is None
            assert queue in [q.name for q in await client.queues()]
            assert (await client.queue(queue)).counts.completed == 2

            cancel_me = (await client.enqueue(queue)).job_id
            assert await client.cancel_job(cancel_me) == "cancelled"

    asyncio.run(main())


def test_async_errors() -> None:
    async def main() -> None:
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
            with pytest.raises(ServerUnreachable):
                await client.queues()
        transport = httpx.MockTransport(
            lambda request: httpx.Response(
                503, json={"error": "the server is shutting down", "code": "UNAVAILABLE"}
            )
        )
        async with AsyncClient("http://jobbie.test", transport=transport) as client:
            with pytest.raises(Unavailable) as caught:
                await client.fetch("q", timeout=1)
            assert caught.value.message == "the server is shutting down"

    asyncio.run(main())

"""Fair queueing through the client: job keys on every way in and out, the queue's fairness
mode and per-key limits, the busiest keys; the same calls on `AsyncClient`."""

from __future__ import annotations

import asyncio

import pytest

from jobbie import AsyncClient, Client, Job, JobContext, NotFound, ValidationError, Worker
from jobbie.models import Throttle
from tests.client.helpers import running, wait_for_state
from tests.serverproc import ServerProcess


def test_a_key_goes_in_with_enqueue_batch_and_schedules_and_comes_out_everywhere(
    client: Client, queue: str
) -> None:
    one = client.enqueue(queue, {"n": 0}, key="acme").job_id
    many = client.enqueue_batch(
        [{"queue": queue, "payload": {"n": 1}, "key": "globex"}, {"queue": queue}]
    ).job_ids
    assert client.get_job(one).key == "acme"
    assert [client.get_job(i).key for i in many] == ["globex", None]

    found = client.search(queue=queue, key="globex")
    assert [j.id for j in found.jobs] == [many[0]]
    assert found.jobs[0].key == "globex"
    assert client.count_jobs(queue=queue, key="acme") == 1

    fetched = client.fetch(queue, count=3, timeout=1)
    assert {j.id: j.key for j in fetched} == {one: "acme", many[0]: "globex", many[1]: None}

    schedule = client.create_schedule(f"s-{queue}", queue, "@daily", key="acme")
    try:
        assert schedule.key == "acme"
        assert client.get_schedule(schedule.id).key == "acme"
        updated = client.update_schedule(schedule.id, schedule.name, queue, "@hourly")
        assert updated.key is None  # an update replaces every field
    finally:
        client.delete_schedule(schedule.id)

    with pytest.raises(ValidationError):
        client.enqueue(queue, key="")
    with pytest.raises(ValidationError):
        client.enqueue(queue, key="k" * 201)


def test_fairness_mode_and_per_key_limits_are_set_and_cleared(client: Client, queue: str) -> None:
    client.enqueue(queue)
    fresh = client.queue(queue)
    assert (fresh.fairness, fresh.key_concurrency, fresh.key_throttle) == ("fifo", None, None)

    assert client.set_fairness(queue, "round_robin").fairness == "round_robin"
    limited = client.set_key_concurrency(queue, 2)
    assert (limited.key_concurrency, limited.fairness) == (2, "round_robin")
    throttled = client.set_key_throttle(queue, rate=10, period="1m")
    assert throttled.key_throttle == Throttle(rate=10, period=60.0)
    assert throttled.key_concurrency == 2
    # The queue-wide limits are separate and untouched.
    assert (throttled.max_concurrency, throttled.throttle) == (None, None)
    assert client.queue(queue).key_throttle == Throttle(rate=10, period=60.0)

    assert client.remove_key_throttle(queue).key_throttle is None
    assert client.set_key_concurrency(queue, None).key_concurrency is None
    assert client.set_fairness(queue, "fifo").fairness == "fifo"

    with pytest.raises(ValidationError):
        client.set_fairness(queue, "lottery")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        client.set_key_concurrency(queue, 0)
    with pytest.raises(ValidationError):
        client.set_key_throttle(queue, rate=0, period=1)
    with pytest.raises(ValidationError):
        client.set_key_throttle(queue, rate=5, period="10ms")


def test_round_robin_and_a_per_key_limit_shape_what_a_fetch_gets(
    client: Client, queue: str
) -> None:
    client.enqueue_batch([{"queue": queue, "payload": n, "key": "big"} for n in range(5)])
    client.enqueue(queue, "small", key="small")
    client.set_fairness(queue, "round_robin")
    first, second = client.fetch(queue, timeout=1), client.fetch(queue, timeout=1)
    assert first is not None and second is not None
    assert {first.key, second.key} == {"big", "small"}  # not two of the big key's in a row

    client.set_key_concurrency(queue, 2)
    more = client.fetch(queue, count=5, timeout=1)
    assert [j.key for j in more] == ["big"]  # big has 1 active: room for one more

    busiest = client.queue_keys(queue)
    assert [(k.key, k.pending, k.active) for k in busiest] == [("big", 3, 2), ("small", 0, 1)]
    assert [k.key for k in client.queue_keys(queue, limit=1)] == ["big"]
    for job in [first, second, *more]:
        client.ack(job)
    after = {k.key: k for k in client.queue_keys(queue)}
    assert set(after) == {"big"}  # small has nothing pending or active left
    assert (after["big"].pending, after["big"].active) == (3, 0)
    assert after["big"].completed_last_minute == 2
    with pytest.raises(NotFound):
        client.queue_keys(f"{queue}.nowhere")


def test_a_handler_sees_its_jobs_key(server: ServerProcess, client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, key="tenant-7").job_id
    worker = Worker(server.url, queues=[queue], concurrency=1)

    @worker.handler(queue)
    def echo_key(job: Job, ctx: JobContext) -> str | None:
        return job.key

    with running(worker):
        done = wait_for_state(client, job_id, "completed")
    assert done.result == "tenant-7"


def test_async_client_has_the_same_calls(server: ServerProcess, queue: str) -> None:
    async def main() -> None:
        async with AsyncClient(server.url) as client:
            job_id = (await client.enqueue(queue, key="acme")).job_id
            await client.enqueue_batch([{"queue": queue, "key": "acme"}])
            assert (await client.get_job(job_id)).key == "acme"
            assert (await client.set_fairness(queue, "round_robin")).fairness == "round_robin"
            assert (await client.set_key_concurrency(queue, 3)).key_concurrency == 3
            throttled = await client.set_key_throttle(queue, rate=4, period=2)
            assert throttled.key_throttle == Throttle(rate=4, period=2.0)
            assert (await client.remove_key_throttle(queue)).key_throttle is None
            keys = await client.queue_keys(queue, limit=5)
            assert [(k.key, k.pending, k.active) for k in keys] == [("acme", 2, 0)]
            job = await client.fetch(queue, timeout=1)
            assert job is not None and job.key == "acme"
            page = await client.search(queue=queue, key="acme")
            assert page.total == 2
            schedule = await client.create_schedule(f"s-{queue}", queue, "@daily", key="acme")
            assert schedule.key == "acme"
            await client.delete_schedule(schedule.id)

    asyncio.run(main())

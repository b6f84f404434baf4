"""The management calls the server offers: job actions, bulk, queues, batches, schedules,
workers and cluster status."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from jobbie import AsyncClient, Client, Conflict, NotFound, ValidationError
from jobbie.client import BulkResult
from tests.backends import TEST_BACKEND
from tests.client.helpers import wait_until
from tests.serverproc import ServerProcess


def test_retry_move_and_delete_a_job(client: Client, queue: str) -> None:
    job_id = client.enqueue(queue, {"n": 1}, max_retries=0).job_id
    job = client.fetch(queue, timeout=1)
    assert job is not None
    client.fail(job, "fatal")
    assert client.get_job(job_id).state == "dead"

    retried = client.retry_job(job_id)
    assert (retried.id, retried.state, retried.attempt) == (job_id, "pending", 0)
    with pytest.raises(Conflict):
        client.retry_job(job_id)  # pending: nothing to retry

    moved = client.move_job(job_id, f"{queue}.other")
    assert (moved.queue, moved.state) == (f"{queue}.other", "pending")
    assert client.fetch(queue, timeout=0) is None

    client.delete_job(job_id)
    with pytest.raises(NotFound):
        client.get_job(job_id)


def test_bulk_by_ids(client: Client, queue: str) -> None:
    ids = client.enqueue_batch([{"queue": queue, "payload": n} for n in range(4)]).job_ids
    result = client.bulk("cancel", job_ids=ids[:3])
    assert isinstance(result, BulkResult)
    assert (result.affected, result.skipped, result.errors) == (3, 0, 0)
    assert result.duration_ms >= 0

    again = client.bulk("cancel", job_ids=ids)  # three are cancelled already: skipped
    assert isinstance(again, BulkResult)
    assert (again.affected, again.skipped) == (1, 3)
    retried = client.bulk("retry", job_ids=ids)
    assert isinstance(retried, BulkResult) and retried.affected == 4
    moved = client.bulk("move", job_ids=ids[:2], move_to_queue=f"{queue}.b")
    assert isinstance(moved, BulkResult) and moved.affected == 2
    assert client.get_job(ids[0]).queue == f"{queue}.b"
    raised = client.bulk("change_priority", job_ids=ids[2:], priority="critical")
    assert isinstance(raised, BulkResult) and raised.affected == 2
    assert client.get_job(ids[3]).priority == "critical"

    with pytest.raises(ValueError, match="exactly one"):
        client.bulk("delete")
    with pytest.raises(NotFound):
        client.bulk_status("bulk_01NOSUCHOPERATION000000000")


def test_clear_drain_and_delete_a_queue(client: Client, queue: str) -> None:
    client.enqueue_batch([{"queue": queue} for _ in range(3)])
    client.enqueue(queue, delay=60)
    running = client.fetch(queue, timeout=1)
    assert running is not None
    assert client.clear(queue) == 3  # two pending and one scheduled; the active job stays

    draining = client.drain(queue)
    assert draining.draining is True
    assert client.fetch(queue, timeout=0) is None
    client.ack(running)

    def drained() -> bool:
        q = client.queue(queue)
        return q.paused and not q.draining

    wait_until(drained, what="the drain to finish")
    assert client.delete_queue(queue) == 1
    with pytest.raises(NotFound):
        client.clear(queue)
    with pytest.raises(NotFound):
        client.queue(queue)


def test_batch_status(client: Client, queue: str) -> None:
    b = client.enqueue_batch(
        [{"queue": queue}, {"queue": queue}], callback_queue=f"{queue}.cb", callback_payload=[1]
    )
    assert b.batch_id is not None
    batch = client.get_batch(b.batch_id)
    assert (batch.state, batch.total, batch.pending, batch.callback_payload) == (
        "running",
        2,
        2,
        [1],
    )
    assert isinstance(batch.created_at, datetime) and batch.completed_at is None
    for job in client.fetch(queue, count=2, timeout=1):
        client.ack(job)
    batch = client.get_batch(b.batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 2, 0)
    assert batch.callback_job_id is not None
    with pytest.raises(NotFound):
        client.get_batch("batch_01NOSUCHBATCH00000000000000")


def test_schedules(client: Client, queue: str) -> None:
    created = client.create_schedule(
        f"nightly-{queue}", queue, "0 3 * * *", timezone="Europe/Paris", payload={"a": 1}
    )
    assert created.id.startswith("sched_")
    assert (created.timezone, created.payload, created.paused) == ("Europe/Paris", {"a": 1}, False)
    assert created.next_run is not None and created.next_run.tzinfo is not None
    assert created.id in [s.id for s in client.schedules()]
    assert client.get_schedule(created.id) == created

    updated = client.update_schedule(created.id, created.name, queue, "@hourly", paused=True)
    assert (updated.cron, updated.paused, updated.timezone, updated.payload) == (
        "@hourly",
        True,
        "UTC",
        None,
    )
    with pytest.raises(ValidationError):
        client.create_schedule(f"bad-{queue}", queue, "not a cron")
    client.delete_schedule(created.id)
    with pytest.raises(NotFound):
        client.get_schedule(created.id)


def test_workers_and_cluster_status(client: Client, queue: str) -> None:
    client.enqueue(queue)
    with Client(client.url, worker_id=f"w-{queue}") as worker_client:
        job = worker_client.fetch(queue, timeout=1)
        assert job is not None
        seen = {w.id: w for w in client.workers()}
        me = seen[f"w-{queue}"]
        assert queue in me.queues and me.active_jobs == 1
        assert isinstance(me.last_seen, datetime)
        worker_client.ack(job)

    status = client.cluster_status()
    mode = "single" if TEST_BACKEND == "sqlite" else "cluster"
    assert (status.mode, status.backend) == (mode, TEST_BACKEND)
    assert [node.leader for node in status.nodes] == [True]


def test_async_management_calls(server: ServerProcess, queue: str) -> None:
    async def main() -> None:
        async with AsyncClient(server.url) as client:
            ids = (await client.enqueue_batch([{"queue": queue}, {"queue": queue}])).job_ids
            assert (await client.move_job(ids[0], f"{queue}.x")).queue == f"{queue}.x"
            assert await client.cancel_job(ids[1]) == "cancelled"
            assert (await client.retry_job(ids[1])).state == "pending"
            bulk = await client.bulk("delete", job_ids=ids)
            assert isinstance(bulk, BulkResult) and bulk.affected == 2
            assert await client.clear(queue) == 0
            assert (await client.cluster_status()).backend == TEST_BACKEND
            assert isinstance(await client.workers(), list)
            schedule = await client.create_schedule(f"s-{queue}", queue, "@daily")
            assert [s.id for s in await client.schedules() if s.id == schedule.id]
            await client.delete_schedule(schedule.id)

    asyncio.run(main())

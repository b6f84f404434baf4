"""Cron schedules: their definitions, and firing at their times, once per fire time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobbie.errors import Conflict, NotFound
from jobbie.models import Schedule
from jobbie.store.base import Store
from jobbie.store.params import ScheduleSpec
from tests.contract.support import MINUTE, SECOND, decoded, json_text, ms, search_ids

UNKNOWN = "sched_01ARZ3NDEKTSV4RRFFQ69G5FAV"


def spec(**fields: Any) -> ScheduleSpec:
    values: dict[str, Any] = {
        "name": "report",
        "queue": "reports",
        "cron": "*/5 * * * *",
        "timezone": "UTC",
        "payload": json_text({"kind": "daily"}),
        "priority": 1,
        "max_retries": 7,
        "tags": json_text({"team": "ops"}),
        "paused": False,
    }
    values.update(fields)
    return ScheduleSpec(**values)


async def advance_to(store: Store, at_ms: int) -> None:
    """Move the clock to `at_ms` (if it is ahead) and run a maintenance pass."""
    store.clock.advance(max(0, at_ms - store.clock.now_ms()) / 1000)
    await store.maintain()


def utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


async def fired(store: Store, queue: str = "reports") -> list[str]:
    return await search_ids(store, queues=(queue,), descending=False, limit=100)


async def test_create_and_read_a_schedule(store: Store) -> None:
    before = store.clock.now_ms()
    created = await store.create_schedule(spec())
    assert created.id.startswith("sched_")
    assert (created.name, created.queue, created.cron, created.timezone) == (
        "report",
        "reports",
        "*/5 * * * *",
        "UTC",
    )
    assert decoded(created.payload) == {"kind": "daily"}
    assert (created.priority, created.max_retries, created.tags) == ("high", 7, {"team": "ops"})
    assert (created.paused, created.last_run) == (False, None)
    next_run = ms(created.next_run)
    assert before < next_run <= before + 5 * MINUTE
    assert utc(next_run).minute % 5 == 0 and next_run % MINUTE == 0
    assert ms(created.created_at) >= before
    assert await store.get_schedule(created.id) == created
    assert await store.list_schedules() == [created]


async def test_schedules_are_listed_by_name(store: Store) -> None:
    for name in ("b", "c", "a"):
        await store.create_schedule(spec(name=name))
    assert [s.name for s in await store.list_schedules()] == ["a", "b", "c"]


async def test_names_are_unique(store: Store) -> None:
    first = await store.create_schedule(spec(name="one"))
    with pytest.raises(Conflict):
        await store.create_schedule(spec(name="one", cron="@daily"))
    other = await store.create_schedule(spec(name="two"))
    with pytest.raises(Conflict):
        await store.update_schedule(other.id, spec(name="one"))
    assert (await store.get_schedule(first.id)).cron == "*/5 * * * *"
    assert (await store.get_schedule(other.id)).name == "two"


async def test_update_replaces_the_definition(store: Store) -> None:
    created = await store.create_schedule(spec())
    updated = await store.update_schedule(
        created.id,
        spec(
            name="renamed",
            queue="other",
            cron="30 6 * * 1",
            timezone="Europe/Berlin",
            payload="[1,2]",
            priority=2,
            max_retries=0,
            tags="{}",
        ),
    )
    assert (updated.id, updated.created_at) == (created.id, created.created_at)
    assert (updated.name, updated.queue, updated.cron) == ("renamed", "other", "30 6 * * 1")
    assert (decoded(updated.payload), updated.priority, updated.max_retries) == (
        [1, 2],
        "normal",
        0,
    )
    local = utc(ms(updated.next_run)).astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 6, 30)
    assert await store.get_schedule(created.id) == updated


async def test_delete_keeps_the_jobs_it_enqueued(store: Store) -> None:
    created = await store.create_schedule(spec())
    await advance_to(store, ms(created.next_run))
    [job_id] = await fired(store)
    await store.delete_schedule(created.id)
    with pytest.raises(NotFound):
        await store.get_schedule(created.id)
    assert await store.list_schedules() == []
    assert (await store.get_job(job_id)).state == "pending"
    await store.create_schedule(spec())  # the name is free again


async def test_unknown_schedule_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_schedule(UNKNOWN)
    with pytest.raises(NotFound):
        await store.update_schedule(UNKNOWN, spec())
    with pytest.raises(NotFound):
        await store.delete_schedule(UNKNOWN)


async def test_a_schedule_fires_at_its_time_once(store: Store) -> None:
    created = await store.create_schedule(spec())
    due = ms(created.next_run)
    await advance_to(store, due - SECOND)
    assert await fired(store) == []
    await advance_to(store, due)
    [job_id] = await fired(store)
    job = await store.get_job(job_id)
    assert (job.state, job.priority, job.max_retries) == ("pending", "high", 7)
    assert decoded(job.payload) == {"kind": "daily"}
    assert job.tags == {"team": "ops", "schedule_id": created.id}
    after = await store.get_schedule(created.id)
    assert ms(after.last_run) == due
    assert ms(after.next_run) == due + 5 * MINUTE

    await store.maintain()
    await advance_to(store, due + 5 * MINUTE - SECOND)
    assert await fired(store) == [job_id]


async def test_each_fire_time_enqueues_one_job(store: Store) -> None:
    created = await store.create_schedule(spec(cron="* * * * *"))
    due = ms(created.next_run)
    for n in range(1, 4):
        await advance_to(store, due)
        await store.maintain()
        assert len(await fired(store)) == n
        due = ms((await store.get_schedule(created.id)).next_run)


async def test_missed_fire_times_collapse_into_one_run(store: Store) -> None:
    created = await store.create_schedule(spec(cron="* * * * *"))
    await advance_to(store, ms(created.next_run) + 10 * MINUTE)
    assert len(await fired(store)) == 1
    schedule = await store.get_schedule(created.id)
    assert ms(schedule.next_run) > store.clock.now_ms()


async def test_a_paused_schedule_does_not_fire(store: Store) -> None:
    created = await store.create_schedule(spec(paused=True))
    assert (created.paused, created.next_run) == (True, None)
    await advance_to(store, store.clock.now_ms() + 11 * MINUTE)
    assert await fired(store) == []

    resumed: Schedule = await store.update_schedule(created.id, spec(paused=False))
    assert ms(resumed.next_run) > store.clock.now_ms()
    await advance_to(store, ms(resumed.next_run))
    assert len(await fired(store)) == 1


async def test_fire_times_follow_the_time_zone(store: Store) -> None:
    created = await store.create_schedule(spec(cron="0 9 * * *", timezone="America/New_York"))
    next_run = ms(created.next_run)
    local = utc(next_run).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert 0 < next_run - store.clock.now_ms() <= 25 * 60 * MINUTE
    await advance_to(store, next_run)
    assert len(await fired(store)) == 1

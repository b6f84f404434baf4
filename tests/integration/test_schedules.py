"""Cron schedules over HTTP: their definitions, and firing when the server's clock (moved by
the test) reaches a fire time. The firing rules in detail are the Store contract suite's."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.helpers import advance_clock, error_code, parse_ts, server_now

SCHEDULE_FIELDS = {
    "id",
    "name",
    "queue",
    "cron",
    "timezone",
    "payload",
    "key",
    "priority",
    "max_retries",
    "tags",
    "paused",
    "last_run",
    "next_run",
    "created_at",
}
UNKNOWN = "sched_01ARZ3NDEKTSV4RRFFQ69G5FAV"
_names = itertools.count()


def _name(queue: str) -> str:
    return f"{queue}-s{next(_names)}"


@pytest.fixture(autouse=True)
def _remove_schedules(api: httpx.Client, queue: str) -> Iterator[None]:
    """Delete this test's schedules so that they never fire on the shared server later."""
    yield
    for schedule in api.get("/api/v1/schedules").json()["schedules"]:
        if schedule["name"].startswith(f"{queue}-s"):
            api.delete(f"/api/v1/schedules/{schedule['id']}")


def _create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/schedules", json=body)
    assert resp.status_code == 201, resp.text
    schedule: dict[str, Any] = resp.json()
    return schedule


def test_create_and_get_schedule(api: httpx.Client, queue: str) -> None:
    name = _name(queue)
    before = time.time()
    created = _create(
        api,
        name=name,
        queue=queue,
        cron="*/5 * * * *",
        payload={"report": "daily"},
        priority="high",
        max_retries=7,
        tags={"team": "ops"},
    )
    assert set(created) == SCHEDULE_FIELDS
    assert created["id"].startswith("sched_")
    assert created["name"] == name
    assert created["queue"] == queue
    assert created["cron"] == "*/5 * * * *"
    assert created["timezone"] == "UTC"
    assert created["payload"] == {"report": "daily"}
    assert (created["priority"], created["max_retries"]) == ("high", 7)
    assert created["tags"] == {"team": "ops"}
    assert created["paused"] is False
    assert created["last_run"] is None
    next_run = parse_ts(created["next_run"])
    assert before < next_run.timestamp() <= before + 5 * 60 + 1
    assert next_run.minute % 5 == 0
    assert (next_run.second, next_run.microsecond) == (0, 0)
    parse_ts(created["created_at"])

    resp = api.get(f"/api/v1/schedules/{created['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == created
    listed = api.get("/api/v1/schedules").json()["schedules"]
    assert [s for s in listed if s["id"] == created["id"]] == [created]


def test_defaults(api: httpx.Client, queue: str) -> None:
    created = _create(api, name=_name(queue), queue=queue, cron="@hourly")
    assert (created["timezone"], created["priority"], created["max_retries"]) == (
        "UTC",
        "normal",
        3,
    )
    assert created["payload"] is None
    assert created["tags"] == {}
    next_run = parse_ts(created["next_run"])
    assert (next_run.minute, next_run.second) == (0, 0)


def test_next_run_follows_the_time_zone(api: httpx.Client, queue: str) -> None:
    created = _create(
        api, name=_name(queue), queue=queue, cron="0 9 * * *", timezone="America/New_York"
    )
    next_run = parse_ts(created["next_run"])
    assert next_run.astimezone(UTC).hour in (13, 14)
    local = next_run.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert 0 < next_run.timestamp() - time.time() <= 86_400 + 3_600


def test_invalid_cron_or_timezone_is_400(api: httpx.Client, queue: str) -> None:
    bad: list[dict[str, Any]] = [
        {"cron": "not a cron"},
        {"cron": "* * * *"},
        {"cron": "* * * * * *"},
        {"cron": "61 * * * *"},
        {"cron": "@sometimes"},
        {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        {"cron": "* * * * *", "timezone": ""},
        {"cron": "* * * * *", "priority": "urgent"},
        {"cron": "* * * * *", "queue": "bad name"},
        {"cron": "* * * * *", "tags": {"a": 1}},
    ]
    for fields in bad:
        name = _name(queue)
        resp = api.post("/api/v1/schedules", json={"name": name, "queue": queue, **fields})
        assert resp.status_code == 400, (fields, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"
        names = {s["name"] for s in api.get("/api/v1/schedules").json()["schedules"]}
        assert name not in names
    resp = api.post("/api/v1/schedules", json={"queue": queue, "cron": "* * * * *"})
    assert resp.status_code == 400


def test_duplicate_name_is_409(api: httpx.Client, queue: str) -> None:
    name = _name(queue)
    first = _create(api, name=name, queue=queue, cron="* * * * *")
    resp = api.post("/api/v1/schedules", json={"name": name, "queue": queue, "cron": "@daily"})
    assert resp.status_code == 409
    assert error_code(resp) == "CONFLICT"
    assert api.get(f"/api/v1/schedules/{first['id']}").json()["cron"] == "* * * * *"

    other = _create(api, name=_name(queue), queue=queue, cron="@daily")
    resp = api.put(
        f"/api/v1/schedules/{other['id']}", json={"name": name, "queue": queue, "cron": "@daily"}
    )
    assert resp.status_code == 409
    assert api.get(f"/api/v1/schedules/{other['id']}").json()["name"] == other["name"]


def test_paused_schedule_has_no_next_run(api: httpx.Client, queue: str) -> None:
    name = _name(queue)
    created = _create(api, name=name, queue=queue, cron="@hourly", paused=True)
    assert created["paused"] is True
    assert created["next_run"] is None

    resp = api.put(
        f"/api/v1/schedules/{created['id']}",
        json={"name": name, "queue": queue, "cron": "@hourly", "paused": False},
    )
    assert resp.status_code == 200, resp.text
    resumed = resp.json()
    assert resumed["paused"] is False
    assert parse_ts(resumed["next_run"]).timestamp() > time.time()


def test_update_replaces_the_schedule(api: httpx.Client, queue: str) -> None:
    created = _create(
        api, name=_name(queue), queue=queue, cron="@hourly", tags={"a": "1"}, priority="high"
    )
    new_name = _name(queue)
    body = {
        "name": new_name,
        "queue": f"{queue}.b",
        "cron": "30 6 * * 1",
        "timezone": "Europe/Berlin",
        "payload": [1, 2],
        "max_retries": 0,
    }
    resp = api.put(f"/api/v1/schedules/{created['id']}", json=body)
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert set(updated) == SCHEDULE_FIELDS
    assert updated["id"] == created["id"]
    assert updated["created_at"] == created["created_at"]
    assert {k: updated[k] for k in body} == body
    # a PUT replaces: omitted fields take their defaults
    assert (updated["priority"], updated["tags"]) == ("normal", {})
    local = parse_ts(updated["next_run"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 6, 30)
    assert api.get(f"/api/v1/schedules/{created['id']}").json() == updated


def test_update_invalid_is_400_and_changes_nothing(api: httpx.Client, queue: str) -> None:
    name = _name(queue)
    created = _create(api, name=name, queue=queue, cron="@hourly")
    for fields in ({"cron": "99 * * * *"}, {"cron": "@hourly", "timezone": "Nowhere/City"}):
        resp = api.put(
            f"/api/v1/schedules/{created['id']}", json={"name": name, "queue": queue, **fields}
        )
        assert resp.status_code == 400, resp.text
    assert api.get(f"/api/v1/schedules/{created['id']}").json() == created


def test_delete_schedule(api: httpx.Client, queue: str) -> None:
    name = _name(queue)
    created = _create(api, name=name, queue=queue, cron="@hourly")
    resp = api.delete(f"/api/v1/schedules/{created['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "deleted"}
    assert api.get(f"/api/v1/schedules/{created['id']}").status_code == 404
    assert api.delete(f"/api/v1/schedules/{created['id']}").status_code == 404
    ids = {s["id"] for s in api.get("/api/v1/schedules").json()["schedules"]}
    assert created["id"] not in ids
    # the name is free again
    _create(api, name=name, queue=queue, cron="@hourly")


def test_unknown_schedule_is_404(api: httpx.Client, queue: str) -> None:
    resp = api.get(f"/api/v1/schedules/{UNKNOWN}")
    assert resp.status_code == 404
    assert error_code(resp) == "NOT_FOUND"
    resp = api.put(
        f"/api/v1/schedules/{UNKNOWN}",
        json={"name": _name(queue), "queue": queue, "cron": "@daily"},
    )
    assert resp.status_code == 404
    assert api.delete(f"/api/v1/schedules/{UNKNOWN}").status_code == 404


def test_a_schedule_fires_when_the_server_clock_reaches_it(
    clock_api: httpx.Client, queue: str
) -> None:
    api = clock_api
    created = _create(api, name=_name(queue), queue=queue, cron="*/5 * * * *", payload=[1])
    try:
        due = parse_ts(created["next_run"]).timestamp()
        advance_clock(api, due - server_now(api) - 1)
        found = api.post("/api/v1/jobs/search", json={"queue": queue}).json()
        assert found["total"] == 0
        advance_clock(api, 2)
        [job] = api.post("/api/v1/jobs/search", json={"queue": queue}).json()["jobs"]
        assert (job["state"], job["payload"]) == ("pending", [1])
        assert job["tags"] == {"schedule_id": created["id"]}
        schedule = api.get(f"/api/v1/schedules/{created['id']}").json()
        assert parse_ts(schedule["last_run"]).timestamp() == due
        assert parse_ts(schedule["next_run"]).timestamp() == due + 300
    finally:
        api.delete(f"/api/v1/schedules/{created['id']}")

"""Hostile input: every class of input that once gave a 500 now gives a 400 JSON error, integer
fields take whole-number floats but never strings, and the OpenAPI document states the rules
the server enforces. Each case was a 500 (or a wrong refusal) before its fix."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

HUGE = 1e308
BEYOND_64_BITS = 2**64 + 1


def post(api: httpx.Client, path: str, body: object) -> httpx.Response:
    return api.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def assert_400(resp: httpx.Response, *, has: str | None = None) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == "VALIDATION_ERROR"
    if has is not None:
        assert has in body["error"], body


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", ["payload", "top"])
def test_deeply_nested_json_is_a_400(api: httpx.Client, queue: str, depth: int, where: str) -> None:
    nested = "[" * depth + "]" * depth
    raw = f'{{"queue": "{queue}", "payload": {nested}}}' if where == "payload" else nested
    resp = api.post("/api/v1/enqueue", content=raw, headers={"content-type": "application/json"})
    assert_400(resp)
    # The same through the Starlette path.
    resp = api.post(
        "/api/v1/jobs/search", content=nested, headers={"content-type": "application/json"}
    )
    assert_400(resp)


ENQUEUE_DURATIONS = ["delay", "retry_base_delay", "retry_max_delay", "expire_after"]


@pytest.mark.parametrize("value", [HUGE, 10**30, "99999999999999999999d", "1e308"])
@pytest.mark.parametrize("field", [*ENQUEUE_DURATIONS, "unique_period"])
def test_huge_enqueue_durations_are_a_400(
    api: httpx.Client, queue: str, field: str, value: object
) -> None:
    body: dict[str, Any] = {"queue": queue, field: value}
    if field == "unique_period":
        body["unique_key"] = "k"
    assert_400(post(api, "/api/v1/enqueue", body))
    assert_400(post(api, "/api/v1/enqueue/batch", {"jobs": [body]}))


@pytest.mark.parametrize("field", ["timeout", "lease_duration"])
def test_huge_fetch_durations_are_a_400(api: httpx.Client, queue: str, field: str) -> None:
    assert_400(post(api, "/api/v1/fetch", {"queues": [queue], "worker_id": "w", field: HUGE}))


def test_huge_throttle_period_is_a_json_400(api: httpx.Client, queue: str) -> None:
    assert_400(post(api, f"/api/v1/queues/{queue}/throttle", {"rate": 1, "period": HUGE}))
    assert_400(post(api, f"/api/v1/queues/{queue}/throttle", {"rate": 1, "period": ""}))


@pytest.mark.parametrize("field", ["attempt_min", "attempt_max", "limit"])
def test_integers_beyond_64_bits_are_a_400(api: httpx.Client, field: str) -> None:
    assert_400(post(api, "/api/v1/jobs/search", {field: BEYOND_64_BITS}))
    bulk = {"action": "delete", "filter": {field: BEYOND_64_BITS}}
    assert_400(post(api, "/api/v1/jobs/bulk", bulk))


def test_a_cron_that_never_fires_is_a_400(api: httpx.Client, queue: str) -> None:
    body = {"name": f"{queue}-never", "queue": queue, "cron": "0 0 31 2 *"}
    assert_400(post(api, "/api/v1/schedules", body), has="never fires")
    body["cron"] = "0 0 29 2 *"  # leap days do come
    assert post(api, "/api/v1/schedules", body).status_code == 201


def test_whole_number_floats_count_as_integers(api: httpx.Client, queue: str) -> None:
    resp = post(api, "/api/v1/enqueue", {"queue": queue, "max_retries": 5.0, "priority": 1.0})
    assert resp.status_code == 201, resp.text
    job = api.get(f"/api/v1/jobs/{resp.json()['job_id']}").json()
    assert (job["max_retries"], job["priority"]) == (5, "high")
    fetched = post(api, "/api/v1/fetch", {"queues": [queue], "worker_id": "w", "count": 2.0})
    assert fetched.status_code == 200, fetched.text
    [leased] = fetched.json()["jobs"]
    ack = post(api, f"/api/v1/ack/{leased['job_id']}", {"worker_id": "w", "attempt": 1.0})
    assert ack.status_code == 200, ack.text
    assert post(api, "/api/v1/jobs/search", {"queue": queue, "limit": 10.0}).status_code == 200


@pytest.mark.parametrize("value", ["5", True, 5.5, None])
def test_integer_fields_refuse_strings_bools_and_fractions(
    api: httpx.Client, queue: str, value: object
) -> None:
    if value is None:
        value = [5]
    assert_400(post(api, "/api/v1/enqueue", {"queue": queue, "max_retries": value}))
    assert_400(post(api, "/api/v1/fetch", {"queues": [queue], "worker_id": "w", "count": value}))
    assert_400(post(api, "/api/v1/enqueue", {"queue": queue, "priority": value}))


@pytest.mark.parametrize(
    ("method", "path", "fast"),
    [
        ("GET", "/api/v1/enqueue", True),
        ("PUT", "/api/v1/ack/job_01ARZ3NDEKTSV4RRFFQ69G5FAV", True),
        ("PUT", "/api/v1/queues", False),
        ("POST", "/api/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV", False),
        ("PATCH", "/api/v1/queues/q1/throttle", False),
    ],
)
def test_405_carries_allow_and_the_same_text_on_both_paths(
    api: httpx.Client, method: str, path: str, fast: bool
) -> None:
    resp = api.request(method, path)
    assert resp.status_code == 405, resp.text
    assert resp.json()["code"] == "METHOD_NOT_ALLOWED"
    allow = resp.headers["allow"]
    assert resp.json()["error"] == f"method {method} not allowed here (allowed: {allow})"
    from jobbie.server.routes import ROUTES

    declared = {r.method for r in ROUTES if _matches(r.path, path)}
    assert set(allow.split(", ")) - {"HEAD"} == declared


def _matches(template: str, path: str) -> bool:
    parts, given = template.split("/"), path.split("/")
    return len(parts) == len(given) and all(
        p.startswith("{") or p == g for p, g in zip(parts, given, strict=True)
    )


def test_openapi_states_the_unstated_rules(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    queue_op = doc["paths"]["/api/v1/queues/{name}"]["delete"]
    params = {p["name"]: p for p in queue_op["parameters"]}
    assert params["name"]["schema"]["pattern"].startswith("^[A-Za-z0-9._:-]")
    assert params["confirm"]["required"] is True
    assert params["confirm"]["schema"]["enum"] == ["true"]
    job_param = doc["paths"]["/api/v1/jobs/{job_id}"]["get"]["parameters"][0]
    assert job_param["schema"]["pattern"] == "^job_[0-9A-Z]{26}$"
    schemas = doc["components"]["schemas"]
    bulk = schemas["BulkRequest"]
    assert bulk["oneOf"] == [{"required": ["job_ids"]}, {"required": ["filter"]}]
    assert schemas["SearchRequest"]["properties"]["cursor"]["anyOf"][0]["minLength"] == 1
    cron = schemas["ScheduleRequest"]["properties"]["cron"]
    assert "pattern" in cron and cron["minLength"] == 1
    throttle_period = schemas["ThrottleRequest"]["properties"]["period"]["anyOf"]
    assert {"maximum", "pattern"} <= {k for branch in throttle_period for k in branch}
    count = schemas["FetchRequest"]["properties"]["count"]["anyOf"][0]
    assert count == {"type": "integer", "minimum": 1, "maximum": 1000}
    # Every integer of every request model is bounded.
    unbounded = [
        (name, prop)
        for name, schema in schemas.items()
        if name.endswith("Request") or name in ("AckBatchItem", "HeartbeatEntry", "Progress")
        for prop, spec in schema.get("properties", {}).items()
        for branch in spec.get("anyOf", [spec])
        if branch.get("type") in ("integer", "number")
        and ("maximum" not in branch or "minimum" not in branch)
    ]
    assert unbounded == []

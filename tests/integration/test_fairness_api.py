"""Fair queueing and per-key limits over HTTP: the queue routes, the busiest-keys listing, the
metric, and what a worker sees through fetch."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import (
    ack,
    advance_clock,
    enqueue,
    error_code,
    fetch,
    fetch_one,
    get_job,
    get_queue,
)
from tests.serverproc import ServerProcess


def enqueue_many(api: httpx.Client, queue: str, jobs: list[dict[str, Any]]) -> list[str]:
    """Enqueue jobs in one batch; returns their ids in order."""
    resp = api.post("/api/v1/enqueue/batch", json={"jobs": [{"queue": queue, **j} for j in jobs]})
    assert resp.status_code == 201, resp.text
    ids: list[str] = resp.json()["job_ids"]
    return ids


def fetch_jobs(api: httpx.Client, queue: str, count: int, **fields: Any) -> list[dict[str, Any]]:
    """The jobs one fetch of `count` hands out ([] on 204)."""
    answer = fetch(api, queue, count=count, **fields)
    return [] if answer is None else list(answer["jobs"])


def queue_entry(api: httpx.Client, queue: str) -> dict[str, Any]:
    resp = api.get(f"/api/v1/queues/{queue}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def audit_actions(api: httpx.Client, queue: str) -> list[str]:
    """The audited actions on `queue`, oldest first."""
    entries = api.get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
    return [e["action"] for e in reversed(entries) if e["target"] == f"queue {queue}"]


# --- the routes ---------------------------------------------------------------------------------


def test_a_new_queue_is_fifo_without_per_key_limits(api: httpx.Client, queue: str) -> None:
    enqueue(api, queue)
    q = get_queue(api, queue)
    assert q["fairness"] == "fifo"
    assert q["key_concurrency"] is None and q["key_throttle"] is None


def test_the_routes_answer_the_queue(api: httpx.Client, queue: str) -> None:
    base = f"/api/v1/queues/{queue}"
    resp = api.post(f"{base}/fairness", json={"mode": "round_robin"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == queue and resp.json()["fairness"] == "round_robin"

    resp = api.post(f"{base}/key-concurrency", json={"max": 3})
    assert resp.status_code == 200, resp.text
    assert resp.json()["key_concurrency"] == 3

    resp = api.post(f"{base}/key-throttle", json={"rate": 5, "period": "1m"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["key_throttle"] == {"rate": 5, "period": 60}

    # The per-key settings sit beside the queue-wide ones, which stay unset.
    for q in (queue_entry(api, queue), get_queue(api, queue)):
        assert q["fairness"] == "round_robin"
        assert q["key_concurrency"] == 3
        assert q["key_throttle"] == {"rate": 5, "period": 60}
        assert q["max_concurrency"] is None and q["throttle"] is None

    resp = api.delete(f"{base}/key-throttle")
    assert resp.status_code == 200, resp.text
    assert resp.json()["key_throttle"] is None
    resp = api.post(f"{base}/key-concurrency", json={"max": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["key_concurrency"] is None
    resp = api.post(f"{base}/fairness", json={"mode": "fifo"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["fairness"] == "fifo"

    assert audit_actions(api, queue) == [
        "queue.fairness",
        "queue.key_concurrency",
        "queue.key_throttle",
        "queue.key_unthrottle",
        "queue.key_concurrency",
        "queue.fairness",
    ]


def test_bad_settings_are_refused_and_write_nothing(api: httpx.Client, queue: str) -> None:
    base = f"/api/v1/queues/{queue}"
    enqueue(api, queue)
    bad: list[tuple[str, dict[str, Any]]] = [
        ("fairness", {}),
        ("fairness", {"mode": "random"}),
        ("fairness", {"mode": None}),
        ("fairness", {"mode": "round_robin", "extra": 1}),
        ("key-concurrency", {}),
        ("key-concurrency", {"max": 0}),
        ("key-concurrency", {"max": -1}),
        ("key-concurrency", {"max": "x"}),
        ("key-throttle", {}),
        ("key-throttle", {"rate": 0, "period": "1s"}),
        ("key-throttle", {"rate": 2}),
        ("key-throttle", {"rate": 2, "period": "10ms"}),
        ("key-throttle", {"rate": 2, "period": "2d"}),
    ]
    for route, body in bad:
        resp = api.post(f"{base}/{route}", json=body)
        assert resp.status_code == 400, (route, body, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.post(f"{base}/fairness", content=b"mode=fifo")
    assert resp.status_code == 415
    q = get_queue(api, queue)
    assert q["fairness"] == "fifo"
    assert q["key_concurrency"] is None and q["key_throttle"] is None
    assert audit_actions(api, queue) == []


def test_bad_keys_on_enqueue_are_refused(api: httpx.Client, queue: str) -> None:
    for key in ("", "k" * 201, 7, ["a"]):
        resp = api.post("/api/v1/enqueue", json={"queue": queue, "key": key})
        assert resp.status_code == 400, (key, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"
    jobs = [{"queue": queue, "key": "fine"}, {"queue": queue, "key": ""}]
    resp = api.post("/api/v1/enqueue/batch", json={"jobs": jobs})
    assert resp.status_code == 400, resp.text
    assert queue not in {q["name"] for q in api.get("/api/v1/queues").json()["queues"]}
    # 200 characters is the most a key may have.
    job_id = enqueue(api, queue, key="k" * 200)
    assert get_job(api, job_id)["key"] == "k" * 200


def test_an_invalid_queue_name_is_400(api: httpx.Client) -> None:
    for method, route, body in [
        ("POST", "fairness", {"mode": "fifo"}),
        ("POST", "key-concurrency", {"max": 1}),
        ("POST", "key-throttle", {"rate": 1, "period": 1}),
        ("DELETE", "key-throttle", None),
        ("GET", "keys", None),
    ]:
        resp = api.request(method, f"/api/v1/queues/bad%20name!/{route}", json=body)
        assert resp.status_code == 400, (route, resp.text)


def test_read_only_keys_may_list_keys_but_not_change_settings(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server("--api-key", "ops=full", "--read-only-api-key", "viewer=read")

    def client(secret: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {secret}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=30)

    with client("full") as full, client("read") as reader:
        enqueue(full, "ro", key="acme")
        base = "/api/v1/queues/ro"
        refused = [
            reader.post(f"{base}/fairness", json={"mode": "round_robin"}),
            reader.post(f"{base}/key-concurrency", json={"max": 1}),
            reader.post(f"{base}/key-throttle", json={"rate": 1, "period": "1s"}),
            reader.delete(f"{base}/key-throttle"),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        listing = reader.get(f"{base}/keys")
        assert listing.status_code == 200, listing.text
        assert [k["key"] for k in listing.json()["keys"]] == ["acme"]
        q = queue_entry(full, "ro")
        assert (q["fairness"], q["key_concurrency"], q["key_throttle"]) == ("fifo", None, None)


def test_openapi_documents_the_routes_and_fields(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]

    def body_of(path: str) -> dict[str, Any]:
        ref = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return dict(schemas[ref.rsplit("/", 1)[1]])

    base = "/api/v1/queues/{name}"
    fairness = body_of(f"{base}/fairness")
    assert fairness["required"] == ["mode"]
    assert fairness["properties"]["mode"]["enum"] == ["fifo", "round_robin"]
    assert body_of(f"{base}/key-concurrency") == body_of(f"{base}/concurrency")
    assert body_of(f"{base}/key-throttle") == body_of(f"{base}/throttle")
    assert "delete" in paths[f"{base}/key-throttle"]
    keys_op = paths[f"{base}/keys"]["get"]
    (limit,) = [p for p in keys_op["parameters"] if p["in"] == "query"]
    assert (limit["name"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == (
        "limit",
        1,
        1000,
    )
    assert {"200", "400", "404"} <= set(keys_op["responses"])
    assert {"keys"} <= set(schemas["QueueKeyList"]["properties"])
    assert {"key", "pending", "active", "completed_last_minute"} <= set(
        schemas["QueueKey"]["properties"]
    )
    queue = schemas["Queue"]["properties"]
    assert {"fairness", "key_concurrency", "key_throttle"} <= set(queue)
    for model in ("EnqueueRequest", "Job", "FetchedJob", "SearchRequest", "ScheduleRequest"):
        assert "key" in schemas[model]["properties"], model


# --- keys listing and metric --------------------------------------------------------------------


def test_keys_listing_busiest_first(api: httpx.Client, queue: str) -> None:
    enqueue_many(
        api,
        queue,
        [{"key": "b"}, *[{"key": "a"}] * 3, *[{"key": "c"}] * 2, {}, {}, {"key": "d"}],
    )
    assert fetch_one(api, queue)["key"] == "b"  # FIFO: b's job is the oldest
    served = fetch_jobs(api, queue, 4)
    assert [j["key"] for j in served] == ["a", "a", "a", "c"]
    e_job = enqueue(api, queue, key="e")
    assert api.post(f"/api/v1/jobs/{e_job}/cancel").status_code == 200

    resp = api.get(f"/api/v1/queues/{queue}/keys")
    assert resp.status_code == 200, resp.text
    keys = resp.json()["keys"]
    # Most pending first, then most active; jobs without a key and keys with nothing pending
    # or active (e's only job was cancelled) are not listed.
    assert [(k["key"], k["pending"], k["active"]) for k in keys] == [
        ("c", 1, 1),
        ("d", 1, 0),
        ("a", 0, 3),
        ("b", 0, 1),
    ]
    assert all(k["completed_last_minute"] == 0 for k in keys)

    for job in served[:2]:
        assert ack(api, job["job_id"], worker_id="w1").status_code == 200
    keys = api.get(f"/api/v1/queues/{queue}/keys", params={"limit": 3}).json()["keys"]
    assert [(k["key"], k["pending"], k["active"]) for k in keys] == [
        ("c", 1, 1),
        ("d", 1, 0),
        ("a", 0, 1),
    ]
    assert keys[2]["completed_last_minute"] == 2


def test_keys_listing_limit_and_unknown_queue(api: httpx.Client, queue: str) -> None:
    enqueue_many(api, queue, [{"key": f"k{i:02}"} for i in range(25)])
    keys = api.get(f"/api/v1/queues/{queue}/keys").json()["keys"]
    assert [k["key"] for k in keys] == [f"k{i:02}" for i in range(20)]  # default 20
    keys = api.get(f"/api/v1/queues/{queue}/keys", params={"limit": 1000}).json()["keys"]
    assert len(keys) == 25
    for limit in ("0", "1001", "x", "-1", "2.5"):
        resp = api.get(f"/api/v1/queues/{queue}/keys", params={"limit": limit})
        assert resp.status_code == 400, (limit, resp.text)
        assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.get(f"/api/v1/queues/{queue}.none/keys")
    assert resp.status_code == 404, resp.text
    assert error_code(resp) == "NOT_FOUND"


def keys_backlog(api: httpx.Client) -> dict[str, float]:
    """`jobbie_queue_keys_backlog` per queue, checking the family has no other label."""
    resp = api.get("/metrics")
    assert resp.status_code == 200, resp.text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        if family.name == "jobbie_queue_keys_backlog":
            assert family.type == "gauge"
            for sample in family.samples:
                assert set(sample.labels) == {"queue"}
                found[sample.labels["queue"]] = sample.value
    return found


def test_metric_counts_keys_with_backlog(api: httpx.Client, queue: str) -> None:
    enqueue_many(api, queue, [{"key": "a"}, {"key": "a"}, {"key": "b"}, {"key": "c"}, {}])
    assert keys_backlog(api)[queue] == 3
    fetch_jobs(api, queue, 3)  # a, a, b: only c has pending jobs left (and the keyless job)
    assert keys_backlog(api)[queue] == 1
    fetch_jobs(api, queue, 2)
    assert keys_backlog(api)[queue] == 0


# --- fetch --------------------------------------------------------------------------------------


def test_round_robin_serves_small_keys_behind_a_flood(api: httpx.Client, queue: str) -> None:
    enqueue_many(api, queue, [{"key": "big", "payload": i} for i in range(200)])
    small = {f"small{k}" for k in range(9)}
    enqueue_many(api, queue, [{"key": key} for key in sorted(small) for _ in range(3)])
    resp = api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "round_robin"})
    assert resp.status_code == 200, resp.text

    served: list[dict[str, Any]] = []
    for _ in range(40):
        job = fetch_one(api, queue)
        assert ack(api, job["job_id"], worker_id="w1").status_code == 200
        served.append(job)
    counts = Counter(job["key"] for job in served)
    assert {key: counts[key] for key in small} == dict.fromkeys(small, 3)
    # FIFO within a key: the big key's jobs come in enqueue order.
    big = [job["payload"] for job in served if job["key"] == "big"]
    assert big == list(range(len(big)))

    # Back to fifo: the rest of the big key, oldest first.
    api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "fifo"}).raise_for_status()
    rest = fetch_jobs(api, queue, 5)
    assert [job["payload"] for job in rest] == list(range(len(big), len(big) + 5))


def test_batched_fetch_takes_a_fair_share_of_each_key(api: httpx.Client, queue: str) -> None:
    api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "round_robin"}).raise_for_status()
    enqueue_many(api, queue, [{"key": "big"}] * 50 + [{"key": f"k{i}"} for i in range(4)] * 5)
    # 10 jobs over 5 keys with ready jobs: ceil(10/5) = 2 from each.
    first = Counter(job["key"] for job in fetch_jobs(api, queue, 10))
    assert first == {"big": 2, "k0": 2, "k1": 2, "k2": 2, "k3": 2}
    # 7 over 5: at most ceil(7/5) = 2 from any one key.
    second = Counter(job["key"] for job in fetch_jobs(api, queue, 7))
    assert sum(second.values()) == 7 and max(second.values()) <= 2


def test_priority_wins_across_keys(api: httpx.Client, queue: str) -> None:
    api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "round_robin"}).raise_for_status()
    enqueue_many(api, queue, [{"key": "a", "payload": "a1"}, {"key": "b", "payload": "b1"}])
    enqueue(api, queue, key="a", payload="a-urgent", priority="critical")
    order = [job["payload"] for job in fetch_jobs(api, queue, 3)]
    assert order[0] == "a-urgent"
    assert sorted(order[1:]) == ["a1", "b1"]


def test_key_concurrency_holds_through_fetch(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}/key-concurrency", json={"max": 2})
    assert resp.status_code == 200, resp.text
    enqueue_many(api, queue, [{"key": "a"}] * 5 + [{"key": "b"}] * 2 + [{}] * 3)

    # fifo with per-key limits: a key at its limit is stepped over; jobs without a key are
    # not limited per key.
    jobs = fetch_jobs(api, queue, 20)
    assert Counter(job["key"] for job in jobs) == {"a": 2, "b": 2, None: 3}
    assert fetch(api, queue, count=20) is None
    assert get_queue(api, queue)["counts"]["pending"] == 3

    done = next(job for job in jobs if job["key"] == "a")
    assert ack(api, done["job_id"], worker_id="w1").status_code == 200
    again = fetch_jobs(api, queue, 20)
    assert [job["key"] for job in again] == ["a"]


def test_key_concurrency_under_concurrent_workers(api: httpx.Client, queue: str) -> None:
    api.post(f"/api/v1/queues/{queue}/key-concurrency", json={"max": 2}).raise_for_status()
    api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "round_robin"}).raise_for_status()
    enqueue_many(api, queue, [{"key": f"k{i % 3}"} for i in range(30)])
    lock = threading.Lock()
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    finished: list[str] = []

    def work(worker: int) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            idle_since = time.monotonic()
            while len(finished) < 30 and time.monotonic() - idle_since < 5:
                job = fetch(client, queue, worker_id=f"w{worker}", timeout="200ms")
                if job is None:
                    continue
                idle_since = time.monotonic()
                with lock:
                    running[job["key"]] += 1
                    most[job["key"]] = max(most[job["key"]], running[job["key"]])
                time.sleep(0.01)
                with lock:  # off the books before the server frees the slot
                    running[job["key"]] -= 1
                assert ack(client, job["job_id"], worker_id=f"w{worker}").status_code == 200
                with lock:
                    finished.append(job["job_id"])

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(work, n) for n in range(8)]:
            future.result()
    assert len(finished) == 30
    assert max(most.values()) <= 2
    assert set(most) == {"k0", "k1", "k2"}


def test_key_throttle_per_window(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    resp = api.post(f"/api/v1/queues/{queue}/key-throttle", json={"rate": 2, "period": "10s"})
    assert resp.status_code == 200, resp.text
    enqueue_many(api, queue, [{"key": "a"}] * 5 + [{"key": "b"}] * 5)

    first = fetch_jobs(api, queue, 10)
    assert Counter(job["key"] for job in first) == {"a": 2, "b": 2}
    assert fetch(api, queue, worker_id="other", count=10) is None
    advance_clock(api, 5)
    assert fetch(api, queue, worker_id="other", count=10) is None
    # A long-poll gets the next jobs once the keys' windows have moved on, long before its
    # own timeout.
    advance_clock(api, 4.8)
    started_at = time.monotonic()
    answer = fetch_one(api, queue, count=10, timeout=10)
    assert Counter(job["key"] for job in answer["jobs"]) == {"a": 2, "b": 2}
    assert time.monotonic() - started_at < 5.0

    api.delete(f"/api/v1/queues/{queue}/key-throttle").raise_for_status()
    assert Counter(job["key"] for job in fetch_jobs(api, queue, 10)) == {"a": 1, "b": 1}


# --- the key on jobs ----------------------------------------------------------------------------


def test_key_shows_on_fetched_jobs_job_detail_and_search(api: httpx.Client, queue: str) -> None:
    keyed = enqueue(api, queue, key="acme")
    plain = enqueue(api, queue)
    enqueue(api, f"{queue}.other", key="acme")

    one = fetch_one(api, queue)
    assert (one["job_id"], one["key"]) == (keyed, "acme")
    many = fetch_one(api, queue, count=5)["jobs"]
    assert [(j["job_id"], j["key"]) for j in many] == [(plain, None)]
    assert get_job(api, keyed)["key"] == "acme"
    assert get_job(api, plain)["key"] is None

    resp = api.post("/api/v1/jobs/search", json={"queue": [queue], "key": "acme"})
    assert resp.status_code == 200, resp.text
    assert [(j["id"], j["key"]) for j in resp.json()["jobs"]] == [(keyed, "acme")]
    found = api.post("/api/v1/jobs/search", json={"key": "acme", "limit": 1000}).json()["jobs"]
    assert {j["queue"] for j in found} >= {queue, f"{queue}.other"}
    assert api.post("/api/v1/jobs/search", json={"key": ""}).status_code == 400

    bulk = {"action": "cancel", "filter": {"queue": [queue], "key": "acme"}, "dry_run": True}
    assert api.post("/api/v1/jobs/bulk", json=bulk).json() == {"matched": 1}


def test_a_schedule_gives_its_key_to_the_jobs_it_fires(clock_api: httpx.Client, queue: str) -> None:
    api = clock_api
    body = {"name": "each minute", "queue": queue, "cron": "* * * * *", "key": "acme"}
    resp = api.post("/api/v1/schedules", json=body)
    assert resp.status_code == 201, resp.text
    schedule = resp.json()
    assert schedule["key"] == "acme"
    assert api.post("/api/v1/schedules", json={**body, "key": ""}).status_code == 400
    advance_clock(api, 61)
    jobs = api.post("/api/v1/jobs/search", json={"queue": [queue]}).json()["jobs"]
    assert jobs and {job["key"] for job in jobs} == {"acme"}
    api.delete(f"/api/v1/schedules/{schedule['id']}").raise_for_status()


def test_running_a_schedule_now_gives_its_key(api: httpx.Client, queue: str) -> None:
    body = {"name": "nightly", "queue": queue, "cron": "0 3 * * *", "key": "acme"}
    schedule = api.post("/api/v1/schedules", json=body).json()
    try:
        resp = api.post(f"/api/v1/schedules/{schedule['id']}/run")
        assert resp.status_code == 201, resp.text
        assert get_job(api, resp.json()["job_id"])["key"] == "acme"
    finally:
        api.delete(f"/api/v1/schedules/{schedule['id']}").raise_for_status()


@pytest.mark.parametrize("mode", ["fifo", "round_robin"])
def test_keys_with_no_ready_jobs_are_skipped(api: httpx.Client, queue: str, mode: str) -> None:
    api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": mode}).raise_for_status()
    api.post(f"/api/v1/queues/{queue}/key-concurrency", json={"max": 1}).raise_for_status()
    enqueue(api, queue, key="later", delay=3600)
    enqueue_many(api, queue, [{"key": "a"}] * 2 + [{"key": "b"}])
    assert Counter(job["key"] for job in fetch_jobs(api, queue, 10)) == {"a": 1, "b": 1}
    assert fetch(api, queue, count=10) is None

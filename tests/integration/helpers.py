"""Small shared helpers for the HTTP integration tests: enqueue, fetch, poll to a deadline."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def enqueue(api: httpx.Client, queue: str, **fields: Any) -> str:
    """Enqueue one job; asserts 201 and returns its id."""
    resp = api.post("/api/v1/enqueue", json={"queue": queue, **fields})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["unique_existing"] is False
    job_id: str = body["job_id"]
    return job_id


def fetch(
    api: httpx.Client,
    queues: str | list[str],
    *,
    worker_id: str = "w1",
    timeout: float | str = 0,
    **fields: Any,
) -> dict[str, Any] | None:
    """One fetch; returns the job (or the `{"jobs": [...]}` answer with count), None on 204."""
    names = [queues] if isinstance(queues, str) else queues
    body = {"queues": names, "worker_id": worker_id, "timeout": timeout, **fields}
    resp = api.post("/api/v1/fetch", json=body)
    if resp.status_code == 204:
        return None
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def fetch_one(api: httpx.Client, queues: str | list[str], **fields: Any) -> dict[str, Any]:
    """A fetch that must hand out a job."""
    job = fetch(api, queues, **fields)
    assert job is not None, "expected a job, got 204"
    return job


def ack(api: httpx.Client, job_id: str, **body: Any) -> httpx.Response:
    return api.post(f"/api/v1/ack/{job_id}", json=body)


def fail(api: httpx.Client, job_id: str, error: str = "boom", **body: Any) -> httpx.Response:
    return api.post(f"/api/v1/fail/{job_id}", json={"error": error, **body})


def heartbeat(
    api: httpx.Client, jobs: dict[str, dict[str, Any]], worker_id: str | None = "w1"
) -> dict[str, str]:
    """Heartbeat; returns {job_id: status}."""
    body: dict[str, Any] = {"jobs": jobs}
    if worker_id is not None:
        body["worker_id"] = worker_id
    resp = api.post("/api/v1/heartbeat", json=body)
    assert resp.status_code == 200, resp.text
    return {job_id: entry["status"] for job_id, entry in resp.json()["jobs"].items()}


def get_job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    resp = api.get(f"/api/v1/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()
    return job


def get_queue(api: httpx.Client, name: str) -> dict[str, Any]:
    """The queue's entry in GET /api/v1/queues."""
    resp = api.get("/api/v1/queues")
    assert resp.status_code == 200, resp.text
    for entry in resp.json()["queues"]:
        if entry["name"] == name:
            found: dict[str, Any] = entry
            return found
    raise AssertionError(f"queue {name!r} not listed")


def advance_clock(api: httpx.Client, seconds: float, *, maintain: bool = True) -> int:
    """Move the server's clock forward (test servers run with `--test-clock`) and, unless
    `maintain` is false, run one scheduler pass before answering; returns the server's now
    in epoch ms. Used instead of sleeping for a lease, a backoff, a schedule or a window."""
    resp = api.post("/_test/clock", json={"seconds": seconds, "maintain": maintain})
    assert resp.status_code == 200, resp.text
    now: int = resp.json()["now_ms"]
    return now


def server_now(api: httpx.Client) -> float:
    """The server's clock in epoch seconds (the wall clock plus what tests moved it by)."""
    return advance_clock(api, 0, maintain=False) / 1000


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def wait_for_state(
    api: httpx.Client, job_id: str, state: str, *, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll GET job until it reaches `state`; returns the job."""
    seen: list[str] = []

    def check() -> dict[str, Any] | None:
        job = get_job(api, job_id)
        seen.append(job["state"])
        return job if job["state"] == state else None

    try:
        return wait_for(check, timeout=timeout, what=f"{job_id} -> {state}")
    except AssertionError:
        raise AssertionError(f"{job_id} never reached {state}; last states {seen[-3:]}") from None


def parse_ts(value: str) -> datetime:
    """An RFC 3339 timestamp of the API as an aware datetime; checks the ms + Z form."""
    assert TIMESTAMP_RE.match(value), f"not RFC 3339 with ms and Z: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ts_epoch(value: str) -> float:
    return parse_ts(value).timestamp()


def rfc3339(epoch: float) -> str:
    """Epoch seconds as the API's timestamp form."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event_types(job: dict[str, Any]) -> list[str]:
    return [event["type"] for event in job["events"]]


class LongPoll:
    """Run a fetch on another thread (its own connection) while the test acts."""

    def __init__(self, api: httpx.Client) -> None:
        self.base_url = str(api.base_url).rstrip("/")
        self.pool = ThreadPoolExecutor(max_workers=4)

    def start(self, queues: list[str], **fields: Any) -> Future[tuple[httpx.Response, float]]:
        """Start a fetch; the future yields (response, monotonic time it returned)."""
        body = {"queues": queues, "worker_id": "poller", **fields}

        def run() -> tuple[httpx.Response, float]:
            resp = httpx.post(f"{self.base_url}/api/v1/fetch", json=body, timeout=70.0)
            return resp, time.monotonic()

        return self.pool.submit(run)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def __enter__(self) -> LongPoll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def assert_still_waiting(future: Future[Any], settle: float = 0.3) -> None:
    """Give a long-poll time to park on the server, and check it has not returned."""
    time.sleep(settle)
    assert not future.done(), f"long-poll returned early: {future.result()!r}"


def error_code(resp: httpx.Response) -> str:
    body = resp.json()
    assert set(body) >= {"error", "code"}, body
    code: str = body["code"]
    return code


def one_job_in_each_state(api: httpx.Client, queue: str) -> dict[str, str]:
    """state -> job id, one job in each of the seven states, checked with GET."""
    jobs: dict[str, str] = {}
    jobs["completed"] = enqueue(api, queue)
    assert fetch_one(api, queue)["job_id"] == jobs["completed"]
    assert ack(api, jobs["completed"], result=1).status_code == 200

    jobs["dead"] = enqueue(api, queue, max_retries=0)
    assert fetch_one(api, queue)["job_id"] == jobs["dead"]
    assert fail(api, jobs["dead"]).json()["status"] == "dead"

    jobs["retrying"] = enqueue(api, queue, retry_backoff="fixed", retry_base_delay="1h")
    assert fetch_one(api, queue)["job_id"] == jobs["retrying"]
    assert fail(api, jobs["retrying"]).json()["status"] == "retrying"

    jobs["cancelled"] = enqueue(api, queue)
    assert api.post(f"/api/v1/jobs/{jobs['cancelled']}/cancel").status_code == 200

    jobs["active"] = enqueue(api, queue)
    assert fetch_one(api, queue)["job_id"] == jobs["active"]

    jobs["scheduled"] = enqueue(api, queue, delay="1h")
    jobs["pending"] = enqueue(api, queue)
    for state, job_id in jobs.items():
        assert get_job(api, job_id)["state"] == state
    return jobs

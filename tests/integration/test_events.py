"""`GET /api/v1/events`: Server-Sent Events of lifecycle events, filters and resumption."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.helpers import (
    ack,
    enqueue,
    error_code,
    fail,
    fetch_one,
    get_job,
    parse_ts,
)

EVENT_FIELDS = {"id", "type", "job_id", "queue", "data", "at"}


@dataclass
class Message:
    """One SSE message as received: its `id:`, `event:` and decoded `data:` lines."""

    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Received:
    status: int = 0
    content_type: str = ""
    lines: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


class EventStream:
    """Reads the event stream on a thread until `count` messages arrived (or a read timeout)."""

    def __init__(
        self,
        api: httpx.Client,
        count: int,
        *,
        params: list[tuple[str, str]] | None = None,
        last_event_id: int | str | None = None,
        read_timeout: float = 8.0,
    ) -> None:
        self.url = str(api.base_url).rstrip("/") + "/api/v1/events"
        self.count = count
        self.params = tuple(params or ())
        self.headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        self.read_timeout = read_timeout
        self.connected = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future: Future[Received] | None = None

    def __enter__(self) -> EventStream:
        self.future = self.pool.submit(self._read)
        assert self.connected.wait(5), "the event stream did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def result(self) -> Received:
        assert self.future is not None
        return self.future.result(timeout=self.read_timeout + 5)

    def _read(self) -> Received:
        got = Received()
        timeout = httpx.Timeout(5.0, read=self.read_timeout)
        try:
            with httpx.stream(
                "GET",
                self.url,
                params=self.params,
                headers=self.headers,
                timeout=timeout,
            ) as resp:
                got.status = resp.status_code
                got.content_type = resp.headers.get("content-type", "")
                fields: dict[str, str] = {}
                for line in resp.iter_lines():
                    got.lines.append(line)
                    if line.startswith(":"):
                        self.connected.set()
                    elif line == "":
                        if fields:
                            got.messages.append(
                                Message(
                                    id=int(fields["id"]),
                                    event=fields["event"],
                                    data=json.loads(fields["data"]),
                                )
                            )
                            fields = {}
                            if len(got.messages) >= self.count:
                                break
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except httpx.ReadTimeout:
            pass  # fewer messages than expected: the test's assertions will show which
        finally:
            self.connected.set()
        return got


def _types(messages: list[Message]) -> list[str]:
    return [m.event for m in messages]


def test_stream_shows_a_job_lifecycle_in_order(api: httpx.Client, queue: str) -> None:
    with EventStream(api, 3, params=[("queue", queue)]) as stream:
        job_id = enqueue(api, queue, payload={"x": 1})
        fetch_one(api, queue)
        assert ack(api, job_id).status_code == 200
        got = stream.result()

    assert got.status == 200
    assert got.content_type.startswith("text/event-stream")
    assert got.lines[0] == ": connected"
    assert _types(got.messages) == ["enqueued", "started", "completed"]
    ids = [m.id for m in got.messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    for message in got.messages:
        assert set(message.data) == EVENT_FIELDS
        assert message.data["id"] == message.id
        assert message.data["type"] == message.event
        assert (message.data["job_id"], message.data["queue"]) == (job_id, queue)
        parse_ts(message.data["at"])
    # the stream and the job's timeline agree on the event ids
    timeline = get_job(api, job_id)["events"]
    assert [(e["id"], e["type"]) for e in timeline] == [(m.id, m.event) for m in got.messages]


def test_stream_starts_at_the_newest_event(api: httpx.Client, queue: str) -> None:
    before = enqueue(api, queue)
    with EventStream(api, 1, params=[("queue", queue)]) as stream:
        after = enqueue(api, queue)
        got = stream.result()
    assert [(m.event, m.data["job_id"]) for m in got.messages] == [("enqueued", after)]
    assert before != after


def test_filter_by_several_queues(api: httpx.Client, queue: str) -> None:
    qa, qb, qc = f"{queue}.a", f"{queue}.b", f"{queue}.c"
    with EventStream(api, 2, params=[("queue", qa), ("queue", qb)]) as stream:
        enqueue(api, qc)
        in_a = enqueue(api, qa)
        enqueue(api, qc)
        in_b = enqueue(api, qb)
        got = stream.result()
    assert [(m.data["queue"], m.data["job_id"]) for m in got.messages] == [
        (qa, in_a),
        (qb, in_b),
    ]


def test_filter_by_type(api: httpx.Client, queue: str) -> None:
    params = [("queue", queue), ("type", "completed")]
    with EventStream(api, 2, params=params) as stream:
        first = enqueue(api, queue)
        fetch_one(api, queue)
        ack(api, first)
        doomed = enqueue(api, queue, max_retries=0)
        fetch_one(api, queue)
        assert fail(api, doomed).json()["status"] == "dead"
        last = enqueue(api, queue)
        fetch_one(api, queue)
        ack(api, last)
        got = stream.result()
    assert [(m.event, m.data["job_id"]) for m in got.messages] == [
        ("completed", first),
        ("completed", last),
    ]


def test_filter_by_several_types(api: httpx.Client, queue: str) -> None:
    params = [("queue", queue), ("type", "dead"), ("type", "cancelled"), ("type", "deleted")]
    with EventStream(api, 3, params=params) as stream:
        doomed = enqueue(api, queue, max_retries=0)
        fetch_one(api, queue)
        fail(api, doomed)
        cancelled = enqueue(api, queue)
        assert api.post(f"/api/v1/jobs/{cancelled}/cancel").status_code == 200
        assert api.delete(f"/api/v1/jobs/{cancelled}").status_code == 200
        got = stream.result()
    assert [(m.event, m.data["job_id"]) for m in got.messages] == [
        ("dead", doomed),
        ("cancelled", cancelled),
        ("deleted", cancelled),
    ]


def test_bulk_actions_write_one_event_per_job(api: httpx.Client, queue: str) -> None:
    ids = [enqueue(api, queue) for _ in range(3)]
    with EventStream(api, 6, params=[("queue", queue)]) as stream:
        resp = api.post("/api/v1/jobs/bulk", json={"action": "cancel", "job_ids": ids})
        assert resp.json()["affected"] == 3
        resp = api.post("/api/v1/jobs/bulk", json={"action": "delete", "job_ids": ids})
        assert resp.json()["affected"] == 3
        got = stream.result()
    assert sorted((m.event, m.data["job_id"]) for m in got.messages) == sorted(
        [("cancelled", job_id) for job_id in ids] + [("deleted", job_id) for job_id in ids]
    )
    assert _types(got.messages) == ["cancelled"] * 3 + ["deleted"] * 3


def test_resume_with_last_event_id(api: httpx.Client, queue: str) -> None:
    job_id = enqueue(api, queue)
    fetch_one(api, queue)
    ack(api, job_id)
    enqueued, started, completed = get_job(api, job_id)["events"]
    assert (enqueued["type"], started["type"], completed["type"]) == (
        "enqueued",
        "started",
        "completed",
    )

    with EventStream(api, 3, params=[("queue", queue)], last_event_id=enqueued["id"]) as stream:
        marker = enqueue(api, queue)
        got = stream.result()
    assert [(m.id, m.event) for m in got.messages[:2]] == [
        (started["id"], "started"),
        (completed["id"], "completed"),
    ]
    # then straight to the live events: nothing before or in between repeated
    assert [(m.event, m.data["job_id"]) for m in got.messages[2:]] == [("enqueued", marker)]


def test_resume_from_the_last_event_seen_gets_only_newer(api: httpx.Client, queue: str) -> None:
    with EventStream(api, 1, params=[("queue", queue)]) as stream:
        first = enqueue(api, queue)
        seen = stream.result().messages
    assert [m.data["job_id"] for m in seen] == [first]
    second = enqueue(api, queue)  # happens while disconnected
    with EventStream(api, 1, params=[("queue", queue)], last_event_id=seen[-1].id) as stream:
        got = stream.result()
    assert [(m.event, m.data["job_id"]) for m in got.messages] == [("enqueued", second)]
    assert got.messages[0].id > seen[-1].id


def test_bad_event_stream_requests_are_400(api: httpx.Client) -> None:
    resp = api.get("/api/v1/events", params={"type": "exploded"})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"
    resp = api.get("/api/v1/events", headers={"Last-Event-ID": "not-a-number"})
    assert resp.status_code == 400
    assert error_code(resp) == "VALIDATION_ERROR"

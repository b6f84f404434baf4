"""Every row of the worker protocol guide's answer table (docs/workers/protocol.md), produced
against a real server and compared with the answer the guide documents.

A row function sets the situation up and returns (call kind, response); `answer()` renders the
response in the table's notation (`200 job`, `204`, `409 LEASE_LOST`, `200 ok`, ...).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import LongPoll, enqueue, fetch_one, wait_for
from tests.serverproc import ServerProcess

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "workers" / "protocol.md"
ROW = re.compile(r"^\| `([A-Z]\d+)` \|(.*)\|\s*$")
BIG = "x" * ((1 << 20) + 10)

Result = tuple[str, httpx.Response]
RowFn = Callable[["Scene"], Result]
ROWS: dict[str, RowFn] = {}


def documented() -> dict[str, str]:
    """Row id -> the answer the guide documents (the code span of the Answer column)."""
    rows = {}
    for line in GUIDE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            answer = re.fullmatch(r"`([^`]+)`", cells[2])
            assert answer, f"row {match.group(1)}: the Answer cell is not one code span"
            rows[match.group(1)] = answer.group(1)
    return rows


def row(row_id: str) -> Callable[[RowFn], RowFn]:
    def register(fn: RowFn) -> RowFn:
        ROWS[row_id] = fn
        return fn

    return register


def answer(kind: str, resp: httpx.Response) -> str:
    """The response in the guide's notation."""
    if resp.status_code == 204:
        return "204"
    body = resp.json()
    if resp.status_code >= 400:
        return f"{resp.status_code} {body['code']}"
    if kind == "fetch":
        return "200 jobs" if "jobs" in body else "200 job"
    if kind == "heartbeat":
        return "200 " + ", ".join(entry["status"] for entry in body["jobs"].values())
    if kind in ("ack_batch", "fail_batch"):
        shown = "200 " + ", ".join(r.get("status") or r["code"] for r in body["results"])
    else:
        shown = f"200 {body['status']}"
    if "next" in body:
        shown += f" + {len(body['next'])} next"
    return shown


class Scene:
    """A server with a movable clock, a client, and a fresh queue per row."""

    def __init__(self, server: ServerProcess, api: httpx.Client, queue: str, make_server) -> None:
        self.server = server
        self.api = api
        self.queue = queue
        self.make_server = make_server

    def running(self, worker: str = "w1", **enqueue_fields: object) -> dict[str, object]:
        """Enqueue one job and fetch it as `worker`: the job as fetched."""
        enqueue(self.api, self.queue, **enqueue_fields)
        return fetch_one(self.api, self.queue, worker_id=worker, lease_duration=10)

    def fence(self, job: dict[str, object], worker: str = "w1") -> dict[str, object]:
        return {"worker_id": worker, "attempt": job["attempt"]}

    def advance(self, seconds: float, maintain: bool = False) -> None:
        resp = self.api.post("/_test/clock", json={"seconds": seconds, "maintain": maintain})
        assert resp.status_code == 200, resp.text

    def post(self, path: str, body: object) -> httpx.Response:
        return self.api.post(path, json=body)

    def beat(self, job_id: str, entry: dict[str, object], worker: str = "w1") -> httpx.Response:
        return self.post("/api/v1/heartbeat", {"worker_id": worker, "jobs": {job_id: entry}})


# ---- fetch ------------------------------------------------------------------------------------


@row("F1")
def fetch_one_job(s: Scene) -> Result:
    enqueue(s.api, s.queue)
    return "fetch", s.post("/api/v1/fetch", {"queues": [s.queue], "worker_id": "w1"})


@row("F2")
def fetch_with_count(s: Scene) -> Result:
    enqueue(s.api, s.queue)
    enqueue(s.api, s.queue)
    resp = s.post("/api/v1/fetch", {"queues": [s.queue], "worker_id": "w1", "count": 5})
    assert len(resp.json()["jobs"]) == 2
    return "fetch", resp


@row("F3")
def fetch_times_out(s: Scene) -> Result:
    started = time.monotonic()
    resp = s.post("/api/v1/fetch", {"queues": [s.queue], "worker_id": "w1", "timeout": 0.3})
    assert time.monotonic() - started >= 0.25
    return "fetch", resp


@row("F4")
def fetch_waiting_at_shutdown(s: Scene) -> Result:
    server = s.make_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        poll = LongPoll(api).start([s.queue], timeout=30)
        wait_for(lambda: b"jobbie_waiting_fetches 1.0" in api.get("/metrics").content)
        server.proc.send_signal(15)
        resp, _ = poll.result(timeout=20)
        return "fetch", resp


@row("F5")
def fetch_during_shutdown(s: Scene) -> Result:
    # The request's headers arrive before the signal and its body after the server began
    # draining: it is handled (in flight) and refused.
    server = s.make_server()
    body = b'{"queues": ["%s"], "worker_id": "w1", "timeout": 0}' % s.queue.encode()
    head = (
        f"POST /api/v1/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head)
        time.sleep(0.2)
        server.proc.send_signal(15)
        wait_for(lambda: "shutdown: draining" in server.log(), timeout=10)
        sock.sendall(body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    status_line, _, rest = raw.partition(b"\r\n")
    status = int(status_line.split()[1])
    payload = rest.partition(b"\r\n\r\n")[2]
    return "fetch", httpx.Response(status, content=payload)


@row("F6")
def fetch_without_worker_id(s: Scene) -> Result:
    return "fetch", s.post("/api/v1/fetch", {"queues": [s.queue]})


# ---- heartbeat --------------------------------------------------------------------------------


@row("H1")
def heartbeat_ok(s: Scene) -> Result:
    job = s.running()
    before = s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["lease_expires_at"]
    s.advance(2)
    resp = s.beat(str(job["job_id"]), {"attempt": job["attempt"]})
    after = s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["lease_expires_at"]
    assert after > before
    return "heartbeat", resp


@row("H2")
def heartbeat_cancel(s: Scene) -> Result:
    job = s.running()
    assert s.api.post(f"/api/v1/jobs/{job['job_id']}/cancel").json() == {"status": "cancelling"}
    return "heartbeat", s.beat(str(job["job_id"]), {"attempt": job["attempt"]})


@row("H3")
def heartbeat_after_expiry(s: Scene) -> Result:
    job = s.running()
    s.advance(11)  # past the 10 s lease; no scheduler pass has reclaimed it
    assert s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["state"] == "active"
    return "heartbeat", s.beat(str(job["job_id"]), {"attempt": job["attempt"]})


@row("H4")
def heartbeat_of_another_attempt(s: Scene) -> Result:
    job = s.running(retry_backoff="none")
    s.advance(11, maintain=True)  # reclaimed: retrying at once (no backoff), then pending
    again = fetch_one(s.api, s.queue, worker_id="w2")
    assert again["attempt"] == 2
    return "heartbeat", s.beat(str(job["job_id"]), {"attempt": job["attempt"]})


@row("H5")
def heartbeat_checkpoint_too_large(s: Scene) -> Result:
    job = s.running()
    resp = s.beat(str(job["job_id"]), {"attempt": job["attempt"], "checkpoint": BIG})
    assert s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["checkpoint"] is None
    return "heartbeat", resp


# ---- ack --------------------------------------------------------------------------------------


@row("A1")
def ack_ok(s: Scene) -> Result:
    job = s.running()
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", {"result": 1, **s.fence(job)})


@row("A2")
def ack_cancel_requested(s: Scene) -> Result:
    job = s.running()
    s.api.post(f"/api/v1/jobs/{job['job_id']}/cancel")
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", s.fence(job))


@row("A3")
def ack_after_expiry(s: Scene) -> Result:
    job = s.running()
    s.advance(11)
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", s.fence(job))


@row("A4")
def ack_after_reassignment(s: Scene) -> Result:
    job = s.running(retry_backoff="none")
    s.advance(11, maintain=True)
    fetch_one(s.api, s.queue, worker_id="w2")
    resp = s.post(f"/api/v1/ack/{job['job_id']}", s.fence(job))
    assert s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["state"] == "active"
    return "ack", resp


@row("A5")
def ack_twice(s: Scene) -> Result:
    job = s.running()
    assert s.post(f"/api/v1/ack/{job['job_id']}", s.fence(job)).status_code == 200
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", s.fence(job))


@row("A6")
def ack_unfenced_not_active(s: Scene) -> Result:
    job_id = enqueue(s.api, s.queue)  # pending: never fetched
    return "ack", s.post(f"/api/v1/ack/{job_id}", {})


@row("A7")
def ack_unknown_job(s: Scene) -> Result:
    unknown = "job_01AAAAAAAAAAAAAAAAAAAAAAAA"
    fence = {"worker_id": "w1", "attempt": 1}
    failed = s.post(f"/api/v1/fail/{unknown}", {"error": "x", **fence})
    released = s.post(f"/api/v1/release/{unknown}", fence)
    for other in (failed, released):
        assert answer("fail", other) == "404 NOT_FOUND", other.text
    return "ack", s.post(f"/api/v1/ack/{unknown}", fence)


@row("A8")
def ack_result_too_large(s: Scene) -> Result:
    job = s.running()
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", {"result": BIG, **s.fence(job)})


@row("B1")
def ack_batch_mixed(s: Scene) -> Result:
    live = s.running()
    done = s.running()
    assert s.post(f"/api/v1/ack/{done['job_id']}", s.fence(done)).status_code == 200
    acks = [{"job_id": j["job_id"], **s.fence(j)} for j in (live, done)]
    return "ack_batch", s.post("/api/v1/ack/batch", {"acks": acks})


@row("A9")
def ack_and_fetch_next(s: Scene) -> Result:
    job = s.running()
    enqueue(s.api, s.queue)
    body = {**s.fence(job), "next": {"queues": [s.queue], "count": 5}}
    resp = s.post(f"/api/v1/ack/{job['job_id']}", body)
    (leased,) = resp.json()["next"]
    assert s.api.get(f"/api/v1/jobs/{leased['job_id']}").json()["state"] == "active"
    return "ack", resp


@row("A10")
def ack_and_fetch_next_none_ready(s: Scene) -> Result:
    job = s.running()
    body = {**s.fence(job), "next": {"queues": [s.queue]}}
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", body)


@row("A11")
def ack_next_without_worker_id(s: Scene) -> Result:
    job = s.running()
    body = {"attempt": job["attempt"], "next": {"queues": [s.queue]}}
    return "ack", s.post(f"/api/v1/ack/{job['job_id']}", body)


@row("B2")
def ack_batch_and_fetch_next(s: Scene) -> Result:
    job = s.running()
    enqueue(s.api, s.queue)
    body = {
        "acks": [{"job_id": job["job_id"], **s.fence(job)}],
        "worker_id": "w1",
        "next": {"queues": [s.queue]},
    }
    return "ack_batch", s.post("/api/v1/ack/batch", body)


# ---- fail -------------------------------------------------------------------------------------


@row("Y1")
def fail_batch_mixed(s: Scene) -> Result:
    live = s.running(max_retries=2)
    done = s.running()
    assert s.post(f"/api/v1/ack/{done['job_id']}", s.fence(done)).status_code == 200
    fails = [
        {"job_id": j["job_id"], "attempt": j["attempt"], "error": "boom"} for j in (live, done)
    ]
    return "fail_batch", s.post("/api/v1/fail/batch", {"worker_id": "w1", "fails": fails})


@row("X1")
def fail_with_retries_left(s: Scene) -> Result:
    job = s.running(max_retries=2)
    resp = s.post(f"/api/v1/fail/{job['job_id']}", {"error": "boom", **s.fence(job)})
    body = resp.json()
    assert body["next_attempt_at"] is not None and body["attempts_remaining"] == 2
    return "fail", resp


@row("X2")
def fail_without_retries_left(s: Scene) -> Result:
    job = s.running(max_retries=0)
    resp = s.post(f"/api/v1/fail/{job['job_id']}", {"error": "boom", **s.fence(job)})
    assert resp.json()["next_attempt_at"] is None
    return "fail", resp


@row("X3")
def fail_cancel_requested(s: Scene) -> Result:
    job = s.running()
    s.api.post(f"/api/v1/jobs/{job['job_id']}/cancel")
    return "fail", s.post(f"/api/v1/fail/{job['job_id']}", {"error": "stopped", **s.fence(job)})


@row("X4")
def fail_after_expire_at(s: Scene) -> Result:
    job = s.running(expire_after=5, max_retries=3)
    s.advance(6)  # past expire_at, within the 10 s lease
    resp = s.post(f"/api/v1/fail/{job['job_id']}", {"error": "boom", **s.fence(job)})
    assert s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["last_error"] == "expired"
    return "fail", resp


@row("X5")
def fail_after_expiry(s: Scene) -> Result:
    job = s.running()
    s.advance(11)
    return "fail", s.post(f"/api/v1/fail/{job['job_id']}", {"error": "late", **s.fence(job)})


# ---- release ----------------------------------------------------------------------------------


@row("R1")
def release_ok(s: Scene) -> Result:
    job = s.running()
    resp = s.post(f"/api/v1/release/{job['job_id']}", s.fence(job))
    assert s.api.get(f"/api/v1/jobs/{job['job_id']}").json()["attempt"] == 0
    return "release", resp


@row("R2")
def release_after_expiry(s: Scene) -> Result:
    job = s.running()
    s.advance(11)
    return "release", s.post(f"/api/v1/release/{job['job_id']}", s.fence(job))


@row("R3")
def release_unfenced_not_active(s: Scene) -> Result:
    job_id = enqueue(s.api, s.queue)
    return "release", s.post(f"/api/v1/release/{job_id}", {})


# ---- any call ---------------------------------------------------------------------------------


@row("G1")
def call_without_key(s: Scene) -> Result:
    server = s.make_server("--api-key", "k1")
    with httpx.Client(base_url=server.url, timeout=10) as api:
        body = {"queues": [s.queue], "worker_id": "w1", "timeout": 0}
        return "fetch", api.post("/api/v1/fetch", json=body)


@row("G3")
def worker_call_with_read_only_key(s: Scene) -> Result:
    server = s.make_server("--api-key", "k1", "--read-only-api-key", "ro1")
    headers = {"Authorization": "Bearer ro1"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as api:
        # The key is valid: it may read.
        assert api.get("/api/v1/queues").status_code == 200
        body = {"queues": [s.queue], "worker_id": "w1", "timeout": 0}
        return "fetch", api.post("/api/v1/fetch", json=body)


@row("G2")
def call_with_wrong_content_type(s: Scene) -> Result:
    resp = s.api.post(
        "/api/v1/heartbeat", content=b'{"jobs": {}}', headers={"Content-Type": "text/plain"}
    )
    return "heartbeat", resp


# ---- the walk ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: these rows move its clock forward."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("guide") / "data",
        scheduler_interval=3600,  # only the rows' own scheduler passes run
        extra_args=("--test-clock",),
    ).start()
    yield proc
    proc.stop()


def test_every_row_has_a_test() -> None:
    rows = documented()
    assert len(rows) >= 25, "the guide's answer table was not found"
    assert sorted(rows) == sorted(ROWS), "rows and tests differ"


@pytest.mark.parametrize("row_id", sorted(documented()))
def test_row(row_id: str, clock_server: ServerProcess, queue: str, make_server) -> None:
    with httpx.Client(base_url=clock_server.url, timeout=30) as api:
        kind, resp = ROWS[row_id](Scene(clock_server, api, queue, make_server))
    assert answer(kind, resp) == documented()[row_id], resp.text

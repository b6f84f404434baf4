"""Graceful shutdown (spec sections 2 and 11): SIGTERM ends long-polls with 204 and exits 0,
and nothing already answered is lost."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]


class RawFetch:
    """A long-poll fetch sent over a plain socket, so the test knows the request has left."""

    def __init__(self, proc: ServerProcess, queue: str, timeout: float) -> None:
        body = (
            f'{{"queues": ["{queue}"], "worker_id": "shutdown-w", "timeout": {timeout}}}'
        ).encode()
        head = (
            f"POST /api/v1/fetch HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.sock = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        self.sock.sendall(head + body)

    def status(self, timeout: float) -> int:
        """The response's status code, waiting at most `timeout` seconds for it."""
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 "), data[:200]
        return int(data.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def still_waiting(fetch: RawFetch) -> bool:
    """True while no byte of the response has arrived."""
    fetch.sock.settimeout(0.0)
    try:
        return not fetch.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        fetch.sock.settimeout(5)


def test_sigterm_ends_long_poll_with_204_and_keeps_jobs(make_server: MakeServer) -> None:
    proc = make_server()
    with httpx.Client(base_url=proc.url, timeout=10.0) as client:
        job_ids = []
        for n in range(5):
            resp = client.post("/api/v1/enqueue", json={"queue": "shutdown.jobs", "payload": n})
            assert resp.status_code == 201, resp.text
            job_ids.append(resp.json()["job_id"])
        scheduled = client.post(
            "/api/v1/enqueue", json={"queue": "shutdown.jobs", "delay": "1h"}
        ).json()["job_id"]

        fetch = RawFetch(proc, "shutdown.empty", timeout=30)
        # A round trip on another connection after the fetch was sent: the server has read it.
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert still_waiting(fetch), "the long-poll answered before any job or signal"

    exit_code: list[int] = []
    signalled = time.monotonic()
    terminator = threading.Thread(target=lambda: exit_code.append(proc.terminate(timeout=30)))
    terminator.start()
    try:
        status = fetch.status(timeout=10)
        answered_after = time.monotonic() - signalled
    finally:
        fetch.close()
        terminator.join(timeout=30)
    exited_after = time.monotonic() - signalled

    assert status == 204
    assert answered_after < 5, f"long-poll answered {answered_after:.1f}s after SIGTERM"
    assert exited_after < 10, f"process took {exited_after:.1f}s to exit"

    again = ServerProcess(proc.data_dir)
    again.start()
    try:
        with httpx.Client(base_url=again.url, timeout=10.0) as client:
            for job_id in job_ids:
                resp = client.get(f"/api/v1/jobs/{job_id}")
                assert resp.status_code == 200, resp.text
                assert resp.json()["state"] == "pending"
            resp = client.get(f"/api/v1/jobs/{scheduled}")
            assert resp.status_code == 200, resp.text
            assert resp.json()["state"] == "scheduled"
            resp = client.post(
                "/api/v1/fetch",
                json={"queues": ["shutdown.jobs"], "worker_id": "w2", "timeout": 0, "count": 10},
            )
            assert resp.status_code == 200, resp.text
            assert sorted(j["job_id"] for j in resp.json()["jobs"]) == sorted(job_ids)
    finally:
        again.stop()
    # Last, so that the checks above run whatever the exit code.
    assert exit_code == [0], f"exit code {exit_code}\n{proc.log()[-3000:]}"


def test_sigterm_when_idle_exits_0_promptly(make_server: MakeServer) -> None:
    proc = make_server()
    started = time.monotonic()
    assert proc.terminate(timeout=30) == 0, proc.log()[-3000:]
    assert time.monotonic() - started < 10


def test_several_long_polls_all_end_with_204(make_server: MakeServer) -> None:
    proc = make_server()
    fetches = [RawFetch(proc, f"shutdown.many.{i}", timeout=60) for i in range(5)]
    try:
        for _ in range(3):
            assert httpx.get(f"{proc.url}/healthz", timeout=5).status_code == 200
        assert all(still_waiting(f) for f in fetches)
        exit_code: list[int] = []
        terminator = threading.Thread(target=lambda: exit_code.append(proc.terminate(timeout=30)))
        signalled = time.monotonic()
        terminator.start()
        statuses = [f.status(timeout=10) for f in fetches]
        answered_after = time.monotonic() - signalled
        terminator.join(timeout=30)
    finally:
        for f in fetches:
            f.close()
    assert statuses == [204] * len(fetches)
    assert answered_after < 5
    assert exit_code == [0], proc.log()[-3000:]

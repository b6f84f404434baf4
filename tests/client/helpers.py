"""Helpers for the client tests: poll to a deadline, run a Worker on a thread, a raw socket
server that hangs up on requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from jobbie import Client, Job, Worker

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, what: str = "") -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")
        time.sleep(0.02)
        last = check()
    return last


def wait_for_state(client: Client, job_id: str, state: str, timeout: float = 10.0) -> Job:
    """Poll the job until it reaches `state`."""

    def check() -> Job | None:
        job = client.get_job(job_id)
        return job if job.state == state else None

    job = wait_until(check, timeout=timeout, what=f"{job_id} -> {state}")
    assert job is not None
    return job


@contextmanager
def running(worker: Worker, *, join_timeout: float = 20.0) -> Iterator[Worker]:
    """Run `worker` on a thread for the duration of the block, then stop it gracefully."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(join_timeout)
    assert not thread.is_alive(), "the worker did not stop"
    if errors:
        raise errors[0]


OK = b'{"status": "ok"}'


class RawServer:
    """Accepts connections and reads whole requests; then, per request, either answers
    200 with `OK` or closes the connection without a word (`close_first` requests)."""

    def __init__(self, close_first: int, idle_close: bool = False) -> None:
        self.close_first = close_first
        self.idle_close = idle_close  # close each connection right after its answer
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                self.requests.append(head.split(b"\r\n")[0])
                if len(self.requests) <= self.close_first:
                    return  # read it all, then hang up: it may well have been acted on
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(OK), OK)
                )
                if self.idle_close:
                    return  # as a keep-alive timeout would, without saying so

    def close(self) -> None:
        self._sock.close()

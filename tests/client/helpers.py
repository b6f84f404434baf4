"""Helpers for the client tests: poll to a deadline, run a Worker on a thread."""

from __future__ import annotations

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

"""Several server URLs: the clients and the worker stick to the server that answers, move on to
the next one when it stops answering, and never send an enqueue twice to get there.

Test servers run on SQLite, so two of them do not share their jobs as PostgreSQL servers
would: each test checks which server a call landed on by asking each server directly.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from jobbie import AsyncClient, Client, Job, JobContext, NotFound, ServerUnreachable, Worker
from tests.client.helpers import RawServer, running, wait_for_state
from tests.serverproc import ServerProcess, free_port

MakeServer = Callable[..., ServerProcess]


def dead_url() -> str:
    """A URL nobody listens on: connecting is refused, nothing is sent."""
    return f"http://127.0.0.1:{free_port()}"


def holds(url: str, job_id: str) -> bool:
    """Whether the server at `url` knows the job."""
    with Client(url, timeout=10) as client:
        try:
            client.get_job(job_id)
        except NotFound:
            return False
        return True


def test_urls_are_checked_up_front() -> None:
    with Client(" http://a.test:8080/, https://b.test/jobbie/ ,http://a.test:8080") as client:
        assert client.urls == ("http://a.test:8080", "https://b.test/jobbie")
        assert client.url == "http://a.test:8080"
    with Client(["http://a.test:1", "http://b.test:2"]) as client:
        assert client.urls == ("http://a.test:1", "http://b.test:2")
    with Client("http://localhost:8080/") as client:
        assert (client.url, client.urls) == ("http://localhost:8080", ("http://localhost:8080",))
    bad = {
        "localhost:8080": "not an http(s) server URL: 'localhost:8080'",
        "http://a.test,ftp://b.test": "'ftp://b.test'",
        "http://": "'http://'",
        "http://a.test:99999": "not a valid server URL: 'http://a.test:99999'",
        " , ": "no server URL given",
    }
    for url, message in bad.items():
        for make in (Client, AsyncClient, Worker):
            with pytest.raises(ValueError) as caught:
                make(url)
            assert message in str(caught.value), (make, url)
    with pytest.raises(ValueError, match="no server URL given"):
        Client([])


def test_a_dead_server_is_skipped(server: ServerProcess, queue: str) -> None:
    dead = dead_url()
    with Client([dead, server.url], timeout=10) as client:
        job_id = client.enqueue(queue, {"n": 1}).job_id  # refused: nothing sent, so moved on
        assert client.url == server.url
        assert holds(server.url, job_id)

    async def main() -> str:
        async with AsyncClient(f"{dead},{server.url}", timeout=10) as client:
            job_id = (await client.enqueue(queue, {"n": 2})).job_id
            assert client.url == server.url
            return job_id

    assert holds(server.url, asyncio.run(main()))


def test_no_server_answering_names_them_all() -> None:
    urls = [dead_url(), dead_url()]
    with Client(urls, timeout=5) as client, pytest.raises(ServerUnreachable) as caught:
        client.enqueue("q", {"n": 1})
    message = caught.value.message
    assert message.startswith(f"{urls[0]}: ") and f"; {urls[1]}: " in message
    assert message.count("ConnectionRefusedError") == 2

    async def main() -> None:
        async with AsyncClient(urls, timeout=5) as client:
            with pytest.raises(ServerUnreachable) as caught:
                await client.health()
            assert urls[0] in caught.value.message and urls[1] in caught.value.message

    asyncio.run(main())


def test_the_client_sticks_to_the_server_that_answers(
    server: ServerProcess, make_server: MakeServer, queue: str
) -> None:
    first = make_server()
    with Client([first.url, server.url], timeout=10) as client:
        before = client.enqueue(queue).job_id
        assert holds(first.url, before) and not holds(server.url, before)
        first.kill()  # its keep-alive connection in the pool dies with it
        after = [client.enqueue(queue).job_id for _ in range(3)]
        assert client.url == server.url
        assert all(holds(server.url, job_id) for job_id in after)
        first.start()  # back, but the client stays where it is
        again = client.enqueue(queue).job_id
        assert holds(server.url, again) and not holds(first.url, again)


def test_async_client_moves_on_when_its_server_dies(
    server: ServerProcess, make_server: MakeServer, queue: str
) -> None:
    first = make_server()

    async def main() -> str:
        async with AsyncClient([first.url, server.url], timeout=10) as client:
            before = (await client.enqueue(queue)).job_id
            assert holds(first.url, before)
            first.kill()
            # A program's loop hears of the closed keep-alive connection while it waits for
            # anything; this one waits for nothing else, so let it. (Killed between taking the
            # connection and writing on it, the server may have read the request: an enqueue
            # is then not resent, as below.)
            await asyncio.sleep(0.01)
            after = (await client.enqueue(queue)).job_id
            assert client.url == server.url
            return after

    assert holds(server.url, asyncio.run(main()))


def test_an_enqueue_that_may_have_arrived_is_not_sent_to_another_server(
    hangs_up: RawServer, server: ServerProcess, queue: str
) -> None:
    # The first server reads the whole request, then hangs up: it may have stored the job.
    with Client([hangs_up.url, server.url], timeout=10) as client:
        with pytest.raises(ServerUnreachable) as caught:
            client.enqueue(queue, {"n": 1})
        assert hangs_up.requests == [b"POST /api/v1/enqueue HTTP/1.1"]
        assert caught.value.message.startswith(f"{hangs_up.url}: ")
        assert "not sent to another server" in caught.value.message
        assert server.url not in caught.value.message
        with pytest.raises(NotFound):
            client.queue(queue)  # the second server never heard of it
        assert client.url == server.url  # later calls go to the next server

    async def main() -> None:
        async with AsyncClient([hangs_up.url, server.url], timeout=10) as client:
            with pytest.raises(ServerUnreachable):
                await client.enqueue(queue, {"n": 2})
        async with AsyncClient([hangs_up.url, server.url], timeout=10) as client:
            with pytest.raises(ServerUnreachable):
                await client.fetch(queue, timeout=0)  # a fetch leases jobs: not resent either

    seen = len(hangs_up.requests)
    asyncio.run(main())
    assert hangs_up.requests[seen:] == [
        b"POST /api/v1/enqueue HTTP/1.1",
        b"POST /api/v1/fetch HTTP/1.1",
    ]
    with Client(server.url) as client, pytest.raises(NotFound):
        client.queue(queue)


def test_a_server_that_stops_answering_is_left_after_the_timeout(
    server: ServerProcess, queue: str
) -> None:
    # The kernel accepts connections on a listening socket nobody reads: requests go unanswered.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        with Client([url, server.url], timeout=1) as client:
            with pytest.raises(ServerUnreachable) as caught:
                client.enqueue(queue)  # it may have been stored: not sent elsewhere
            assert caught.value.message.startswith(f"{url}: TimeoutError")
            assert client.url == server.url
            assert client.enqueue(queue).job_id  # the caller's own retry lands on the next
        with Client([url, server.url], timeout=1) as client:
            assert client.health().status == "ok"  # harmless: moved on within the call

        async def main() -> str:
            async with AsyncClient([url, server.url], timeout=1) as client:
                return (await client.health()).status

        assert asyncio.run(main()) == "ok"


def test_harmless_calls_move_on_to_the_next_server(
    hangs_up: RawServer, server: ServerProcess, queue: str
) -> None:
    with Client(server.url, timeout=10) as direct:
        job_id = direct.enqueue(queue).job_id
        job = direct.fetch(queue, timeout=5)
        assert job is not None and job.id == job_id
        worker_id = direct.worker_id
    with Client([hangs_up.url, server.url], timeout=10) as client:
        # A fenced ack is harmless to repeat: sent twice to the first server (a dropped
        # keep-alive connection is worth one more try), then to the next one.
        status = client.ack(job_id, {"ok": True}, worker_id=worker_id, attempt=job.attempt)
        assert status == "completed"
        assert hangs_up.requests == [f"POST /api/v1/ack/{job_id} HTTP/1.1".encode()] * 2
        assert client.url == server.url
        assert client.health().status == "ok"
        assert len(hangs_up.requests) == 2  # the client stays on the server that answers

    async def main() -> str:
        async with AsyncClient([hangs_up.url, server.url], timeout=10) as client:
            return (await client.health()).status

    assert asyncio.run(main()) == "ok"
    # (aiohttp itself sends a GET again once over a dropped connection, before our repeat.)
    assert set(hangs_up.requests[2:]) == {b"GET /healthz HTTP/1.1"}


def test_worker_skips_a_dead_server(server: ServerProcess, queue: str) -> None:
    worker = Worker([dead_url(), server.url], queues=[queue], concurrency=2, poll_timeout=1)
    worker.register(queue, lambda job, ctx: {"doubled": job.payload * 2})
    with Client(server.url, timeout=10) as client, running(worker):
        ids = [client.enqueue(queue, n).job_id for n in range(5)]
        for n, job_id in enumerate(ids):
            assert wait_for_state(client, job_id, "completed").result == {"doubled": n * 2}
    assert worker.stats.completed == 5


@pytest.mark.parametrize("fetch_batch", [True, False])
def test_worker_keeps_working_when_its_server_dies(
    server: ServerProcess, make_server: MakeServer, queue: str, fetch_batch: bool
) -> None:
    first = make_server()
    seen: list[Any] = []

    def handle(job: Job, ctx: JobContext) -> Any:
        seen.append(job.payload)
        return job.payload

    worker = Worker(
        f"{first.url},{server.url}",
        queues=[queue],
        concurrency=2,
        poll_timeout=5,
        fetch_batch=fetch_batch,
    )
    worker.register(queue, handle)
    with running(worker):
        with Client(first.url, timeout=10) as client:
            job_id = client.enqueue(queue, "first").job_id
            wait_for_state(client, job_id, "completed")
        first.kill()  # the worker's long-poll there dies with it
        with Client(server.url, timeout=10) as client:
            ids = [client.enqueue(queue, f"second {n}").job_id for n in range(3)]
            for job_id in ids:
                wait_for_state(client, job_id, "completed", timeout=20)
    assert seen[0] == "first" and sorted(seen[1:]) == ["second 0", "second 1", "second 2"]

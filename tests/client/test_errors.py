"""Error answers become the `JobbieError` subclass of their code, with the server's message."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from jobbie import (
    Client,
    Conflict,
    JobbieError,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    ServerUnreachable,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from tests.serverproc import ServerProcess, free_port


def test_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.get_job("job_01NOTAREALJOB0000000000000")
    exc = caught.value
    assert (exc.code, exc.status) == ("NOT_FOUND", 404)
    assert exc.message and str(exc) == exc.message
    assert any(note.startswith("request id: ") for note in exc.__notes__)


def test_validation_errors(client: Client, queue: str) -> None:
    with pytest.raises(ValidationError) as caught:
        client.enqueue("no spaces allowed", {})
    assert caught.value.code == "VALIDATION_ERROR"
    assert "queue" in caught.value.message
    with pytest.raises(ValidationError):
        client.enqueue(queue, delay="soon")
    with pytest.raises(ValidationError):
        client.fetch(queue, timeout=61)


def test_conflict_and_lease_lost(client: Client, queue: str) -> None:
    pending = client.enqueue(queue).job_id
    # Never fetched by this client, so no fencing fields: the plain wrong-state conflict.
    with pytest.raises(Conflict) as caught:
        client.ack(pending)
    assert type(caught.value) is Conflict
    assert caught.value.code == "CONFLICT"

    job = client.fetch(queue, timeout=1)
    assert job is not None
    with pytest.raises(LeaseLost) as lost:
        client.ack(job, attempt=job.attempt + 1)
    assert (lost.value.code, lost.value.status) == ("LEASE_LOST", 409)
    assert isinstance(lost.value, Conflict)
    assert client.ack(job) == "completed"


def test_payload_too_large(client: Client, queue: str) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        client.enqueue(queue, "x" * (1024 * 1024 + 10))
    assert caught.value.code == "PAYLOAD_TOO_LARGE"


def test_unauthorized(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server("--api-key", "k1,k2")
    with Client(server.url) as anonymous, Client(server.url, api_key="wrong") as wrong:
        with pytest.raises(Unauthorized) as caught:
            anonymous.queues()
        assert caught.value.code == "UNAUTHORIZED"
        with pytest.raises(Unauthorized):
            wrong.enqueue("q", {})
        assert anonymous.health().status == "ok"  # /healthz stays open
    with Client(server.url, api_key="k2") as allowed:
        assert allowed.enqueue("q", {}).status == "pending"


def test_server_unreachable() -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(ServerUnreachable) as caught:
        client.health()
    assert caught.value.code == "SERVER_UNREACHABLE"
    assert isinstance(caught.value, JobbieError)
    assert isinstance(caught.value.__cause__, OSError)


def _answering(status: int, body: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            status, content=body, headers={"content-type": "application/json"}
        )
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (503, b'{"error": "shutting down", "code": "UNAVAILABLE"}', Unavailable, "shutting down"),
        (
            405,
            b'{"error": "nope", "code": "METHOD_NOT_ALLOWED"}',
            JobbieError,
            "METHOD_NOT_ALLOWED",
        ),
        (409, b'{"error": "odd", "code": "SOMETHING_NEW"}', Conflict, "SOMETHING_NEW: odd"),
        (502, b"<html>bad gateway</html>", JobbieError, "HTTP 502"),
        (503, b"", Unavailable, "HTTP 503"),
    ],
)
def test_answers_without_a_known_code(
    status: int, body: bytes, expected: type[JobbieError], message: str
) -> None:
    client = Client("http://jobbie.test", transport=_answering(status, body))
    with client, pytest.raises(JobbieError) as caught:
        client.queues()
    assert type(caught.value) is expected
    assert message in caught.value.message


def test_a_malformed_scheduled_at_is_a_validation_error(client: Client) -> None:
    with pytest.raises(ValidationError, match="scheduled_at"):
        client.enqueue("q", None, scheduled_at="not a time")

"""Reading JSON requests (size limit, content type, msgspec decoding) and writing responses."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError
from jobbie.server.runtime import runtime
from jobbie.wirenum import decode_request

T = TypeVar("T")


class JSONResponse(Response):
    """A response whose content is encoded with msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(request: Request) -> bytes:
    """The request body, refused past the body-size limit before it is all read."""
    limit = runtime(request).settings.max_body_bytes
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode(request: Request, type_: type[T]) -> T:
    """Decode and validate the JSON body as `type_`; an empty body counts as `{}`."""
    body = await read_body(request)
    return decode_body(body, request.headers.get("content-type", ""), type_)


def decode_body(body: bytes, content_type: str, type_: type[T]) -> T:
    """Validate a request body as `type_`: content type, UTF-8, JSON, then the model."""
    if not body.strip():
        body = b"{}"
    elif not is_json(content_type):
        raise UnsupportedMediaType("a request body needs Content-Type: application/json")
    try:
        # msgspec does not check UTF-8 inside raw values; refuse bad bytes up front.
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return decode_request(body, type_)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ValidationError("invalid JSON: nested too deeply") from None


def json_response(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status)

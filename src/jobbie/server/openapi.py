"""The OpenAPI 3.1 document, derived from the route table and the msgspec models."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from jobbie import __version__, models
from jobbie.errors import NotFound
from jobbie.models import QUEUE_NAME_PATTERN, ErrorBody
from jobbie.server.fielddocs import describe_fields
from jobbie.server.runtime import runtime
from jobbie.wirenum import schema_hook

if TYPE_CHECKING:
    from jobbie.server.routes import Endpoint

_REF = "#/components/schemas/{name}"
QUEUE_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": QUEUE_NAME_PATTERN,
}


def _id_schema(prefix: str) -> dict[str, Any]:
    """Ids are a prefix and a ULID (jobbie.store.ids); any other text is simply not found."""
    return {"type": "string", "pattern": f"^{prefix}_[0-9A-Z]{{26}}$", "maxLength": 100}


PATH_PARAMS: dict[str, dict[str, Any]] = {
    "name": QUEUE_NAME_SCHEMA,
    "job_id": _id_schema("job"),
    "batch_id": _id_schema("batch"),
    "bulk_id": _id_schema("bulk"),
    "schedule_id": _id_schema("sched"),
}
_PATH_PARAM = re.compile(r"{(\w+)}")
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: running in the background",
    204: "No job arrived within the timeout",
    400: "Validation error",
    401: "Missing or invalid API key",
    404: "Not found",
    409: "Conflict with the current state (or LEASE_LOST)",
    413: "Body or value over its size limit",
    415: "Content-Type is not application/json",
    503: "Shutting down or unavailable",
}


def build_document(routes: Sequence[Endpoint]) -> dict[str, Any]:
    """Every route with its parameters, request body, responses and error shapes."""
    types: list[Any] = [ErrorBody]
    for route in routes:
        if route.body is not None:
            types.append(route.body)
        for shape in route.responses.values():
            if isinstance(shape, tuple):
                types.extend(shape)
            elif shape is not None:
                types.append(shape)
    schemas, components = msgspec.json.schema_components(
        types, schema_hook=schema_hook, ref_template=_REF
    )
    for type_ in types:
        rules = getattr(type_, "json_schema_rules", None)
        if rules is not None:
            components[type_.__name__].update(rules)
    describe_fields(components, models)
    schema_of = dict(zip(types, schemas, strict=True))

    def schema(shape: Any) -> dict[str, Any]:
        if isinstance(shape, tuple):
            return {"oneOf": [schema_of[t] for t in shape]}
        return dict(schema_of[shape])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": route.handler.__name__ + "_" + route.method.lower(),
        }
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": PATH_PARAMS[p]}
            for p in _PATH_PARAM.findall(route.path)
        ]
        parameters += [
            {"name": name, "in": "query", "required": required, "schema": param_schema}
            for name, (required, param_schema) in route.query.items()
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": schema_of[route.body]}},
            }
        responses: dict[str, Any] = {}
        for status, shape in route.responses.items():
            entry: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "OK")}
            if shape is not None:
                entry["content"] = {"application/json": {"schema": schema(shape)}}
            responses[str(status)] = entry
        errors = set(route.errors)
        if route.path.startswith("/api/"):
            errors.add(401)
        for status in sorted(errors):
            responses[str(status)] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/json": {"schema": schema_of[ErrorBody]}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
        operation["responses"] = responses

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Jobbie",
            "version": __version__,
            "description": "A language-agnostic background-job server over HTTP/JSON.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


async def openapi_json(request: Request) -> Response:
    """The document, built once when the app is created."""
    return Response(runtime(request).openapi, media_type="application/json")


# Swagger UI ships inside the package (static/swagger/, see its README.md): /docs works offline.
SWAGGER_UI_VERSION = "5.35.0"
_STATIC = Path(__file__).parent / "static" / "swagger"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "jobbie-init.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
PATH_PARAMS["asset"] = {"type": "string", "enum": sorted(_ASSETS)}
_SWAGGER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Jobbie API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css?v={SWAGGER_UI_VERSION}">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head><body><div id="swagger-ui" data-url="/openapi.json"></div>
<script src="/docs/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
<script src="/docs/jobbie-init.js?v={__version__}"></script>
</body></html>"""


async def docs(request: Request) -> Response:
    """Swagger UI for /openapi.json, from the files shipped in the package."""
    return HTMLResponse(_SWAGGER)


@functools.cache
def _asset(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


async def docs_asset(request: Request) -> Response:
    """One of Swagger UI's files; anything else is 404."""
    name = request.path_params["asset"]
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no such file: /docs/{name}")
    # The page's URLs carry the version (?v=), so an upgrade is never served from a cache.
    return Response(
        _asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )

"""/openapi.json explains every wire type and every field: each schema has a description (the
class docstring) and so does each of its properties (the field's attribute docstring, see
jobbie.server.fielddocs). A new model or field without one fails here."""

from __future__ import annotations

from typing import Any

import msgspec

from jobbie import models
from jobbie.server.fielddocs import attribute_docs, field_doc
from jobbie.server.openapi import build_document
from jobbie.server.routes import ROUTES


def components() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = build_document(ROUTES)["components"]["schemas"]
    return schemas


def test_every_schema_and_field_in_the_document_is_described() -> None:
    missing = []
    for name, schema in components().items():
        if schema.get("type") == "object" and not schema.get("description"):
            missing.append(name)
        for field, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{name}.{field}")
    assert missing == [], "add a docstring to these models / fields in jobbie/models.py"


def test_every_model_and_field_has_a_docstring() -> None:
    missing = []
    for cls in vars(models).values():
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            continue
        if cls.__module__ != models.__name__:
            continue
        if not (cls.__doc__ or "").strip():
            missing.append(cls.__name__)
        for field in msgspec.structs.fields(cls):
            if field_doc(cls, field.name, models) is None:
                missing.append(f"{cls.__name__}.{field.name}")
    assert missing == []


def test_field_docstrings_reach_the_document() -> None:
    schemas = components()
    fetch = schemas["FetchRequest"]["properties"]
    assert fetch["worker_id"]["description"] == field_doc(models.FetchRequest, "worker_id", models)
    # A description the type carries (the queue-name rule) is kept after the field's own.
    queue = schemas["EnqueueRequest"]["properties"]["queue"]["description"]
    assert queue.startswith(attribute_docs(models)["EnqueueRequest"]["queue"])
    assert "[A-Za-z0-9._:-]" in queue
    # Inherited fields are described too.
    assert schemas["JobDetail"]["properties"]["id"]["description"]

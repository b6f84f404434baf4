"""The HTTP API reference, built from the server's own OpenAPI document (in process, no server):
every route with its request and responses, every schema with its fields, types, bounds and
descriptions."""

from __future__ import annotations

import json
from typing import Any

from docs.gen.markdown import code, table, text

_REF = "#/components/schemas/"
_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("minProperties", "at least {} entries"),
    ("maxProperties", "at most {} entries"),
    ("pattern", "matches `{}`"),
    ("format", "format {}"),
)


def document() -> dict[str, Any]:
    """The OpenAPI document `/openapi.json` serves."""
    from jobbie.server.openapi import build_document
    from jobbie.server.routes import ROUTES

    return build_document(ROUTES)


def anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def _link(ref: str) -> str:
    name = ref.removeprefix(_REF)
    return f"[{name}](#{anchor(name)})"


def _is_duration(schema: dict[str, Any]) -> bool:
    """The API's duration: seconds as a number, or a string such as `1.5s`."""
    members = schema.get("anyOf", [])
    return any(
        m.get("type") == "string" and "unit" in m.get("description", "") for m in members
    ) and any(m.get("type") == "number" for m in members)


def type_of(schema: dict[str, Any]) -> str:
    """A schema as a short Markdown phrase: `string`, `integer` or null, array of X, ..."""
    if "$ref" in schema:
        return _link(schema["$ref"])
    if _is_duration(schema):
        nullable = any(m.get("type") == "null" for m in schema["anyOf"])
        return "duration" + (" or `null`" if nullable else "")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(type_of(s) for s in schema[key]))
    if "enum" in schema:
        return " \\| ".join(code(json.dumps(v)) for v in schema["enum"])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"object of string → {type_of(extra)}"
        return "object"
    if kind is None:
        return "any JSON"
    return code(kind)


def _bounds(schema: dict[str, Any]) -> list[str]:
    found = []
    for key, phrase in _BOUNDS:
        if key in schema:
            found.append(phrase.format(schema[key]))
    return found


def _notes(schema: dict[str, Any]) -> str:
    """Description, then bounds and descriptions of the alternatives, then the default."""
    parts = []
    if schema.get("description"):
        parts.append(text(schema["description"]).rstrip("."))
    if _is_duration(schema):
        parts.append("seconds, or a string such as `500ms`, `1.5s`, `10m`, `2d`")
        return _sentences(parts)
    members = schema.get("anyOf") or schema.get("oneOf") or [schema]
    for member in members:
        bits = []
        if member is not schema and member.get("description"):
            bits.append(text(member["description"]).rstrip("."))
        bits.extend(text(b) if not b.startswith("matches") else b for b in _bounds(member))
        items = member.get("items")
        if isinstance(items, dict) and "$ref" not in items:
            bits.extend(f"each {text(b)}" for b in _bounds(items) if not b.startswith("matches"))
        if bits:
            label = type_of(member) if len(members) > 1 else ""
            parts.append((f"{label}: " if label else "") + "; ".join(bits))
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default {code(json.dumps(schema['default']))}")
    return _sentences(parts)


def _sentences(parts: list[str]) -> str:
    """Parts as sentences: each capitalised, each ending with a full stop."""
    done = [p[0].upper() + p[1:] for p in parts if p]
    return " ".join(p if p.endswith(".") else p + "." for p in done)


def _schema_section(name: str, schema: dict[str, Any]) -> str:
    out = [f"### {name} {{ #{anchor(name)} }}\n"]
    if schema.get("description"):
        out.append(schema["description"].strip() + "\n")
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", []))
        rows = [
            [
                code(field),
                type_of(prop),
                "yes" if field in required else "",
                _notes(prop),
            ]
            for field, prop in properties.items()
        ]
        out.append(table(["Field", "Type", "Required", "Meaning"], rows))
    elif "enum" in schema or "anyOf" in schema or "type" in schema:
        out.append(f"{type_of(schema)}. {_notes(schema)}\n")
    if schema.get("additionalProperties") is False:
        out.append("Unknown fields are refused with 400.\n")
    return "\n".join(out)


def _body_of(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    schema = content.get("application/json", {}).get("schema")
    return type_of(schema) if schema else ""


def render() -> str:
    """The generated part of the HTTP API page."""
    doc = document()
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            tag = operation.get("tags", ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    out = []
    for tag, operations in by_tag.items():
        out.append(f"## {tag.capitalize()}\n")
        for method, path, operation in operations:
            out.append(f"### `{method} {path}`\n")
            out.append(text(operation.get("summary", "")) + "\n")
            body = operation.get("requestBody")
            if body:
                out.append(f"Request body: {_body_of(body.get('content'))}\n")
            params = operation.get("parameters", [])
            if params:
                rows = [
                    [
                        code(p["name"]),
                        text(p["in"]),
                        type_of(p.get("schema", {})),
                        "yes" if p.get("required") else "",
                        _notes(p.get("schema", {})),
                    ]
                    for p in params
                ]
                out.append(table(["Parameter", "In", "Type", "Required", "Meaning"], rows))
            rows = [
                [code(status), text(answer.get("description", "")), _body_of(answer.get("content"))]
                for status, answer in sorted(operation["responses"].items())
            ]
            out.append(table(["Status", "Meaning", "Body"], rows))
    out.append("## Schemas\n")
    for name, schema in sorted(doc["components"]["schemas"].items()):
        out.append(_schema_section(name, schema))
    return "\n".join(out)

"""Job search filters as URL query parameters, named like the search API's fields.

`queue`, `state` and `priority` repeat; the API's `tags` object is repeated `tag=k=v`; every
other field is one parameter. Empty values are ignored, so a plain GET form can submit all
of its inputs. `to_query` writes a filter back, so a page's URL is always its bookmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from starlette.datastructures import ImmutableMultiDict, QueryParams

from jobbie.errors import ValidationError
from jobbie.models import SearchRequest
from jobbie.wirenum import convert_query

_LISTS = ("queue", "state", "priority")
_FIELDS = tuple(SearchRequest.__struct_fields__)


def parse_filter(params: ImmutableMultiDict[str, str] | QueryParams) -> SearchRequest:
    """The search a query string describes; ValidationError (400) when it is not one."""
    fields: dict[str, Any] = {}
    for name in _LISTS:
        # A text input may hold several names separated by commas (names never contain one).
        values = [v.strip() for raw in params.getlist(name) for v in raw.split(",") if v.strip()]
        if values:
            fields[name] = values
    tags: dict[str, str] = {}
    for pair in params.getlist("tag"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"tag: write key=value, got {pair!r}")
        tags[key] = value
    if tags:
        fields["tags"] = tags
    for name in _FIELDS:
        if name in _LISTS or name == "tags" or not params.get(name):
            continue
        fields[name] = params[name]
    try:
        return convert_query(fields, SearchRequest)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None


def to_pairs(req: SearchRequest, *, cursor: bool = True) -> list[tuple[str, str]]:
    """The query parameters that describe `req` (its cursor too unless told not to)."""
    pairs: list[tuple[str, str]] = []
    for name in _FIELDS:
        value = getattr(req, name)
        if value is None or (name == "cursor" and not cursor):
            continue
        if name == "tags":
            pairs.extend(("tag", f"{k}={v}") for k, v in value.items())
        elif isinstance(value, list):
            pairs.extend((name, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif hasattr(value, "isoformat"):
            pairs.append((name, value.isoformat().replace("+00:00", "Z")))
        else:
            pairs.append((name, str(value)))
    return pairs


def to_query(req: SearchRequest, *, cursor: bool = True) -> str:
    return urlencode(to_pairs(req, cursor=cursor))


def as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def quote_value(value: str) -> str:
    return quote(value, safe="")

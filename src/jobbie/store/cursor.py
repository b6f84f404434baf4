"""Keyset-pagination cursors: opaque tokens naming where the previous page ended.

A page is ordered by (sort value, seq); the cursor carries the last shown row's pair, so the
next page starts strictly after it and every matching job is visited once even while jobs are
inserted between pages. Backends compile `Cursor` into their own "rows after" condition.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import msgspec

from jobbie.errors import ValidationError
from jobbie.models import SortField

if TYPE_CHECKING:
    from jobbie.store.search import SearchFilter

__all__ = [
    "NULLABLE_SORTS",
    "Cursor",
    "decode_cursor",
    "encode_cursor",
    "next_cursor",
    "partial_page",
    "split_page",
]

# Sort columns that may be NULL; NULL sorts below every value.
NULLABLE_SORTS = frozenset({"started_at", "completed_at", "scheduled_at"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """Where the previous page ended: its last row's sort key and seq, for one sort and order."""

    sort: SortField
    descending: bool
    key: int | None  # the last row's sort column (None only for the nullable columns)
    seq: int


class Row(Protocol):
    """What `next_cursor` reads from a row: `sqlite3.Row` and dicts both qualify."""

    def __getitem__(self, key: str, /) -> Any: ...


R = TypeVar("R", bound=Row)


# --- cursors --------------------------------------------------------------------------------------


class _CursorWire(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    sort: SortField
    order: Literal["asc", "desc"]
    key: int | None
    seq: int


def encode_cursor(cursor: Cursor) -> str:
    """An opaque URL-safe token for `cursor` (base64 of a small JSON array, no padding)."""
    wire = _CursorWire(
        _CURSOR_VERSION, cursor.sort, "desc" if cursor.descending else "asc", cursor.key, cursor.seq
    )
    return base64.urlsafe_b64encode(msgspec.json.encode(wire)).rstrip(b"=").decode("ascii")


def decode_cursor(token: str) -> Cursor:
    """Read a token made by `encode_cursor`; anything else is a ValidationError."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        wire = msgspec.json.decode(raw, type=_CursorWire)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        # binascii.Error is a ValueError; non-ASCII tokens raise ValueError too.
        raise ValidationError("cursor: not a cursor returned by this server") from None
    valid = (
        wire.version == _CURSOR_VERSION
        and (wire.key is not None or wire.sort in NULLABLE_SORTS)
        and (wire.key is None or _INT64_MIN <= wire.key <= _INT64_MAX)
        and 0 <= wire.seq <= _INT64_MAX
    )
    if not valid:
        raise ValidationError("cursor: not a cursor returned by this server")
    return Cursor(sort=wire.sort, descending=wire.order == "desc", key=wire.key, seq=wire.seq)


def next_cursor(f: SearchFilter, last_row: Row) -> str:
    """The cursor that continues after `last_row`, the last row shown on this page."""
    cursor = Cursor(sort=f.sort, descending=f.descending, key=last_row[f.sort], seq=last_row["seq"])
    return encode_cursor(cursor)


def split_page(f: SearchFilter, rows: Sequence[R]) -> tuple[list[R], str | None]:
    """The rows to show and the next cursor (None on the last page), given up to
    `f.limit + 1` rows in page order (the extra row only tells that more follow)."""
    if len(rows) <= f.limit:
        return list(rows), None
    shown = list(rows[: f.limit])
    return shown, next_cursor(f, shown[-1])


def partial_page(f: SearchFilter, rows: Sequence[R]) -> tuple[list[R], str | None]:
    """Like `split_page` for a page query the time limit stopped: the rows found so far are
    all shown and the cursor continues after the last of them (None when none was found)."""
    if len(rows) > f.limit or not rows:
        return split_page(f, rows)
    return list(rows), next_cursor(f, rows[-1])

"""Error signatures: one key per kind of failure, so the console groups failed jobs without
scanning them.

A signature is the error's first line with what varies between occurrences of the same fault
replaced by placeholders: quoted values, ids (UUIDs, ULIDs, long hex), addresses and numbers.
`KeyError: 'user 42'` and `KeyError: 'user 7'` share `KeyError: '<str>'`; the exception type
and the wording stay, so different faults stay apart.
"""

from __future__ import annotations

import re

MAX_LENGTH = 200

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Quoted values first: whatever is inside them (ids, numbers, spaces) is one value.
    (re.compile(r"'(?:[^'\\]|\\.)*'"), "'<str>'"),
    (re.compile(r'"(?:[^"\\]|\\.)*"'), '"<str>"'),
    (re.compile(r"`[^`]*`"), "`<str>`"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    # ULIDs, also after a prefix such as job_ (underscore is a word character for \b).
    (re.compile(r"(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{26}(?![0-9A-Za-z])"), "<id>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    # Hex runs of 12+ characters with at least one digit: hashes, object ids.
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"), "<id>"),
    # Numbers, also when glued to letters (job42, 500ms, v2): the digits vary, the word not.
    (re.compile(r"[-+]?\d+(?:[.,:]\d+)*"), "<n>"),
)
_SPACES = re.compile(r"\s+")


def error_signature(error: str | None) -> str | None:
    """The normalised first non-empty line of `error` (None for no error)."""
    if error is None:
        return None
    line = next((ln.strip() for ln in error.splitlines() if ln.strip()), "")
    if not line:
        return None
    for pattern, placeholder in _RULES:
        line = pattern.sub(placeholder, line)
    line = _SPACES.sub(" ", line)
    if len(line) > MAX_LENGTH:
        line = line[: MAX_LENGTH - 1] + "…"
    return line

"""Small helpers for writing Markdown tables safely."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence


def text(value: object) -> str:
    """Prose in a table cell: one line, no HTML, no cell dividers."""
    flat = " ".join(str(value).split())
    return html.escape(flat, quote=False).replace("|", "\\|")


def code(value: object) -> str:
    """A code span in a table cell (backticks inside are doubled around)."""
    flat = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in flat else "`"
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}" if flat else ""


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; cells must already be escaped (see `text` and `code`)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines) + "\n"

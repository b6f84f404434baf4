"""The CLI reference: every `jobbie` command, its usage, help, arguments and options, read
from the Typer app itself."""

from __future__ import annotations

from typing import Any

import typer.main

from docs.gen.markdown import code, table, text


def command_tree() -> Any:
    """The click group behind `jobbie`."""
    from jobbie.cli import app

    return typer.main.get_command(app)


def _commands(group: Any, ctx: Any) -> list[tuple[Any, Any]]:
    """(command, context) for every command under `group`, depth first, in help order."""
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or getattr(command, "hidden", False):
            continue
        sub = command.context_class(command, info_name=name, parent=ctx)
        found.append((command, sub))
        if hasattr(command, "list_commands"):
            found.extend(_commands(command, sub))
    return found


def _params(command: Any, ctx: Any) -> str:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        if param.param_type_name == "argument":
            name = code(str(param.name).upper())
            meaning = getattr(param, "help", None) or ""
            required = "required" if param.required else "optional"
            rows.append([name, text(f"{meaning} ({required})")])
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        flags, help_text = record
        rows.append([code(flags), text(help_text)])
    if not rows:
        return ""
    return table(["Argument or option", "Meaning"], rows)


def render() -> str:
    """The whole page body."""
    root = command_tree()
    ctx = root.context_class(root, info_name="jobbie")
    parts = [root.help.strip() if root.help else "", ""]
    parts.append(table(["Command", "What it does"], _summary_rows(root, ctx)))
    for command, sub in _commands(root, ctx):
        path = sub.command_path
        parts.append(f"## `{path}`\n")
        if command.help:
            parts.append(_help_block(command.help))
        parts.append(f"```text\n{command.get_usage(sub)}\n```\n")
        params = _params(command, sub)
        if params:
            parts.append(params)
    return "\n".join(parts)


def _summary_rows(root: Any, ctx: Any) -> list[list[str]]:
    rows = []
    for command, sub in _commands(root, ctx):
        anchor = sub.command_path.replace(" ", "-")
        short = (command.help or "").strip().splitlines()[0] if command.help else ""
        rows.append([f"[`{sub.command_path}`](#{anchor})", text(short)])
    return rows


def _help_block(help_text: str) -> str:
    # click's \b marks a paragraph not to rewrap; Markdown has no use for it.
    lines = [line for line in help_text.strip().splitlines() if line.strip() != "\b"]
    return "\n".join(lines).replace("<", "&lt;") + "\n"

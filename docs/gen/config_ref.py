"""The configuration reference: every `jobbie server` option, every `JOBBIE_*` variable the
settings read, every `Settings` field with its default, read from the code.

The environment variables are found by running `Settings.build` against a mapping that records
every name it looks up, so a new setting shows up here without anyone listing it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docs.gen.markdown import code, table, text

_BRACKET = re.compile(r"\s*\[env (JOBBIE_[A-Z0-9_]+)(?:;\s*([^\]]*))?\]\s*$")


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.append(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.asked.append(str(key))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def env_vars_read() -> list[str]:
    """Every `JOBBIE_*` variable `Settings.build` consults, in the order it does."""
    from jobbie.config import Settings

    env = _RecordingEnv()
    Settings.build({}, env)
    return list(dict.fromkeys(name for name in env.asked if name.startswith("JOBBIE_")))


@dataclass(frozen=True)
class Option:
    """One `jobbie server` option."""

    name: str
    flag: str
    env: str
    default: str
    meaning: str
    hidden: bool


def server_options() -> list[Option]:
    """The options of `jobbie server`, from the Typer app."""
    from docs.gen.cli_ref import command_tree

    root = command_tree()
    command = root.commands["server"]
    found = []
    for param in command.params:
        if param.param_type_name != "option":
            continue
        help_text = (getattr(param, "help", None) or "").strip()
        env = f"JOBBIE_{str(param.name).upper()}"
        default = ""
        match = _BRACKET.search(help_text)
        if match:
            env = match.group(1)
            default = (match.group(2) or "").strip()
            help_text = help_text[: match.start()].strip()
        found.append(
            Option(
                name=str(param.name),
                flag=param.opts[0],
                env=env,
                default=default,
                meaning=help_text,
                hidden=bool(getattr(param, "hidden", False)),
            )
        )
    return found


def field_docs() -> dict[str, str]:
    """`Settings` field -> its attribute docstring (the string literal under the field)."""
    from jobbie.config import Settings

    source = textwrap.dedent(inspect.getsource(Settings))
    (cls,) = ast.parse(source).body
    assert isinstance(cls, ast.ClassDef)
    docs: dict[str, str] = {}
    body = cls.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _human_bytes(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value} ({value // size} {unit})"
    return str(value)


def _human_ms(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        if getattr(field.default_factory, "__name__", "") == "<lambda>":
            return "computed at start-up"
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = []
        for sub in dataclasses.fields(value):
            item = getattr(value, sub.name)
            shown = _human_ms(item) if sub.name.endswith("_ms") else item
            parts.append(f"{sub.name}={shown}")
        return ", ".join(parts)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and field.name.endswith("_bytes"):
        return _human_bytes(value)
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, Path):
        return str(value)
    return "(none)" if value is None else str(value)


def settings_fields() -> list[tuple[str, str, str]]:
    """(field, default, meaning) of every `Settings` field."""
    from jobbie.config import Settings

    docs = field_docs()
    return [(f.name, _default(f), docs.get(f.name, "")) for f in dataclasses.fields(Settings)]


def client_env_vars() -> dict[str, str]:
    """`JOBBIE_*` variables read by the client commands (typer's envvar=), with their help."""
    from docs.gen.cli_ref import _commands, command_tree

    root = command_tree()
    ctx = root.context_class(root, info_name="jobbie")
    found: dict[str, str] = {}
    for command, _ in _commands(root, ctx):
        if command.name == "server":
            continue
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str) and envvar not in found:
                found[envvar] = f"{param.opts[0]}: {getattr(param, 'help', '') or ''}"
    return found


def problems() -> list[str]:
    """What is undocumented; the docs test asserts this is empty."""
    found = []
    docs = field_docs()
    from jobbie.config import Settings

    for f in dataclasses.fields(Settings):
        if not docs.get(f.name):
            found.append(
                f"Settings.{f.name} has no attribute docstring (a string literal on the line"
                " after the field, saying what it does)"
            )
    options = server_options()
    read = env_vars_read()
    for option in options:
        if not option.meaning:
            found.append(f"jobbie server {option.flag} has no help text")
        if option.env not in read:
            found.append(f"jobbie server {option.flag}: {option.env} is not read by Settings.build")
    option_envs = {option.env for option in options}
    all_docs = " ".join(docs.values())
    for name in read:
        if name not in option_envs and name not in all_docs:
            found.append(
                f"{name} is read by Settings.build but has no option and no Settings field"
                " docstring mentions it"
            )
    return found


def render() -> str:
    """The generated part of the configuration page."""
    options = server_options()
    read = env_vars_read()
    option_envs = {option.env for option in options}
    docs = field_docs()
    parts = ["## `jobbie server` options\n"]
    parts.append(
        "Each option can also be given as its environment variable; a flag on the command line"
        " wins over the variable, the variable over the default.\n"
    )
    rows = [
        [code(o.flag), code(o.env), code(o.default) if o.default else "", text(o.meaning)]
        for o in options
        if not o.hidden
    ]
    parts.append(table(["Option", "Environment variable", "Default", "Meaning"], rows))
    hidden = [o for o in options if o.hidden]
    if hidden:
        parts.append(
            "Hidden options, for tests only: "
            + ", ".join(f"`{o.flag}` (`{o.env}`): {text(o.meaning)}" for o in hidden)
            + ".\n"
        )
    env_only = [name for name in read if name not in option_envs]
    if env_only:
        parts.append("## Environment variables without a flag\n")
        rows = []
        for name in env_only:
            owners = [field for field, doc in docs.items() if name in doc]
            meaning = "; ".join(docs[field] for field in owners)
            rows.append([code(name), text(meaning)])
        parts.append(table(["Variable", "Meaning"], rows))
    parts.append("## Every setting\n")
    parts.append(
        "The server's settings object (`jobbie.config.Settings`), with its defaults. Settings"
        " without an option or a variable above are fixed limits of this version.\n"
    )
    parts.append(
        table(
            ["Setting", "Default", "Meaning"],
            [[code(name), code(default), text(doc)] for name, default, doc in settings_fields()],
        )
    )
    parts.append("## Client commands\n")
    parts.append(
        "The client commands (`jobbie enqueue`, `jobbie queues`, ...) and `jobbie backup` read"
        " these variables:\n"
    )
    parts.append(
        table(
            ["Variable", "Meaning"],
            [[code(name), text(doc)] for name, doc in client_env_vars().items()],
        )
    )
    return "\n".join(parts)

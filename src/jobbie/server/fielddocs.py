"""Field descriptions for the OpenAPI document, from the attribute docstrings of the wire types.

A field of a `msgspec.Struct` is documented the way Python documents attributes: a string
literal on the line after it. msgspec puts a class's docstring in its schema but knows nothing
of attribute docstrings, so `describe_fields` copies them into the schema's properties. (They
stay plain docstrings in the source, so the models read well and merge easily.)
"""

from __future__ import annotations

import ast
import inspect
from functools import cache
from types import ModuleType
from typing import Any

import msgspec


@cache
def attribute_docs(module: ModuleType) -> dict[str, dict[str, str]]:
    """Class name -> field name -> its attribute docstring, for every class of `module`."""
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs: dict[str, str] = {}
        body = node.body
        for stmt, after in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
        found[node.name] = docs
    return found


def field_doc(cls: type[Any], name: str, module: ModuleType) -> str | None:
    """The docstring of field `name` of `cls`, looked up along its bases."""
    docs = attribute_docs(module)
    for base in cls.__mro__:
        doc = docs.get(base.__name__, {}).get(name)
        if doc:
            return doc
    return None


def describe_fields(components: dict[str, dict[str, Any]], module: ModuleType) -> None:
    """Give each property of each Struct's component schema its field's docstring.

    A description the type already carries (a `Meta(description=...)`, e.g. the rules of a
    queue name) is kept after the field's own.
    """
    for cls in vars(module).values():
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            continue
        schema = components.get(cls.__name__)
        if schema is None:
            continue
        properties = schema.get("properties", {})
        for name, prop in properties.items():
            doc = field_doc(cls, name, module)
            if doc is None:
                continue
            existing = prop.get("description")
            prop["description"] = f"{doc} ({existing})" if existing else doc

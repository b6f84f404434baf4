"""The Prometheus metrics a server exports: names, types, labels and help text, read from the
server's own registry after one observation of each kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from docs.gen.markdown import code, table, text

_SKIP_LABELS = {"le", "quantile"}


@dataclass(frozen=True)
class Family:
    """One metric family as exported."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...]


def _example(info: Any) -> Any:
    """A smallest valid value of a msgspec type, to build a sample queue with."""
    mi = msgspec.inspect
    if isinstance(info, mi.StructType):
        return {f.encode_name: _example(f.type) for f in info.fields if f.required}
    if isinstance(info, mi.UnionType):
        if info.includes_none:
            return None
        return _example(info.types[0])
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.Metadata):
        return _example(info.type)
    simple: dict[type[Any], Any] = {
        mi.BoolType: False,
        mi.IntType: 1,
        mi.FloatType: 1.0,
        mi.StrType: "q",
        mi.ListType: [],
        mi.DictType: {},
    }
    for kind, value in simple.items():
        if isinstance(info, kind):
            return value
    return None


def families() -> list[Family]:
    """Every family the server's /metrics exports, with one queue and one request observed."""
    from jobbie.models import Queue
    from jobbie.server.metrics import Metrics

    metrics = Metrics()
    metrics.observe_request("GET", "/api/v1/queues", 200, 0.001)
    metrics.fetch_wait.observe(0.01)
    queue = msgspec.convert(_example(msgspec.inspect.type_info(Queue)), Queue)
    exposition = metrics.render([queue], waiting=0, keys_backlog={queue.name: 1}).decode()
    found = []
    parsed = list(text_string_to_metric_families(exposition))
    names = {family.name for family in parsed}
    for family in parsed:
        if family.name.endswith("_created") and family.name.removesuffix("_created") in names:
            continue  # prometheus_client's creation timestamp of a histogram's children
        labels: dict[str, None] = {}
        for sample in family.samples:
            labels.update(dict.fromkeys(k for k in sample.labels if k not in _SKIP_LABELS))
        name = family.name + ("_total" if family.type == "counter" else "")
        found.append(Family(name, family.type, family.documentation, tuple(labels)))
    return found


def render() -> str:
    """The metric table of the operations guide."""
    rows = [
        [code(f.name), text(f.type), text(", ".join(f.labels)), text(f.help)] for f in families()
    ]
    return table(["Metric", "Type", "Labels", "Meaning"], rows)

"""The lifecycle vocabulary is declared once: the enums of `store.states`. The wire `Literal`s
in `models.py` and the client's shapes in `client/types.py` must say the same thing."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from jobbie import models as m
from jobbie.client import types as t
from jobbie.store.bulk import APPLIES_TO
from jobbie.store.states import Backoff, Priority, State


def literal_values(literal: Any) -> set[str]:
    return set(get_args(literal))


def test_state_names_are_the_states() -> None:
    assert literal_values(m.StateName) == {s.value for s in State}


def test_priority_names_are_the_priorities() -> None:
    assert literal_values(m.PriorityName) == {p.label for p in Priority}


def test_backoff_names_are_the_backoff_policies() -> None:
    assert literal_values(m.BackoffName) == {b.value for b in Backoff}


def test_bulk_actions_are_the_actions_the_store_knows() -> None:
    assert literal_values(m.BulkAction) == set(APPLIES_TO)


@pytest.mark.parametrize(
    ("wire", "client"),
    [(m.Job, t.Job), (m.Schedule, t.Schedule), (m.Batch, t.Batch), (m.WorkerInfo, t.WorkerInfo)],
)
def test_client_models_carry_every_wire_field(wire: type[Any], client: type[Any]) -> None:
    assert set(wire.__struct_fields__) <= set(client.__struct_fields__)


def test_client_filter_names_every_search_filter() -> None:
    paging = {"limit", "order", "sort", "cursor"}
    assert set(t.JobFilter.__annotations__) == set(m.SearchRequest.__struct_fields__) - paging

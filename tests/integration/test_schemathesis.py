"""Every operation of /openapi.json, driven by schemathesis against a real server: generated
requests, valid (positive) and invalid (negative), must never get a 5xx, and every answer must
match its documented status, content type and schema.

The document is used as served, with two exceptions made here for the test's running time:
`GET /api/v1/events` is an endless stream (the SSE tests cover it), and the fetch long-poll
timeout is held under a second, 0 when not given (waiting is not what this test is about).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serverproc import ServerProcess

EXAMPLES = 20  # per operation and mode: ~1,200 requests in all, 2-3 minutes on a busy machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: generated requests clear, delete and move whatever they find."""
    proc = ServerProcess(tmp_path_factory.mktemp("schemathesis") / "data").start()
    yield proc
    proc.stop()


def document(server: ServerProcess) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(httpx.get(f"{server.url}/openapi.json").json())
    fetch = doc["components"]["schemas"]["FetchRequest"]["properties"]
    fetch["timeout"] = {"type": "number", "minimum": 0, "maximum": 0.2}
    return doc


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_holds_its_contract(
    fuzzed_server: ServerProcess, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(document(fuzzed_server)).exclude(path="/api/v1/events")
    if only := os.environ.get("SCHEMATHESIS_ONLY"):  # when debugging one operation
        schema = schema.include(path_regex=only)
    tried = 0
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"unusable operation: {result.err()}")
            continue
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # report the case as found: no shrinking
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            nonlocal tried
            tried += 1
            if case.operation.path == "/api/v1/fetch" and isinstance(case.body, dict):
                case.body.setdefault("timeout", 0)  # the default would wait 30 s
            case.call_and_validate(base_url=fuzzed_server.url, checks=CHECKS, timeout=10)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # no parameter and no body: nothing to break
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried and reported
            failures.append(f"{operation.label}: {_describe(exc)}")
    print(
        f"schemathesis {mode}: {operations} operations, {tried} requests, {len(failures)} failures"
    )
    assert operations >= (1 if only else 35)
    assert not failures, "\n\n".join(failures)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"

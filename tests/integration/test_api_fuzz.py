"""Fuzz the served API from its own OpenAPI document: no input may produce a 5xx.

The API runs from the Procfile's `web:` line on a private Redis (no workers:
accepted jobs just wait in the queue). Schemathesis reads `/openapi.json` from
the live server and sends generated (valid and invalid) requests with a valid
bearer token; the one check is `not_a_server_error` (a 503 while Redis is down
is a different row, see test_faults_worker.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.workers import QueueStack, StartStack


@pytest.fixture(scope="module")
def fuzz_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(n_workers=0, queue="genblaze-fuzz")


def _fuzz_operation(op: Any, mode: GenerationMode, stack: QueueStack, seen: list[str]) -> None:
    headers = {"Authorization": f"Bearer {stack.tokens['acme']}"}

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        try:
            resp = case.call(
                headers={**(case.headers or {}), **headers},
                timeout=5 if case.path.endswith("/events") else 10,
            )
        except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
            return  # the generated request cannot even be sent (client-side refusal)
        seen.append(f"{case.method} {case.path} {resp.status_code}")
        assert resp.status_code < 500, f"{case.method} {case.formatted_path}: {resp.status_code}"

    run()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_api_answer_5xx(fuzz_stack: QueueStack, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.api_url}/openapi.json")
    schema.config.base_url = fuzz_stack.api_url
    seen: list[str] = []
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in ops} >= {
        "POST /v1/jobs",
        "GET /v1/jobs/{job_id}",
        "DELETE /v1/jobs/{job_id}",
    }
    for op in ops:
        try:
            _fuzz_operation(op, mode, fuzz_stack, seen)
        except Unsatisfiable:
            # Operations whose inputs are all unconstrained strings (or none: healthz,
            # metrics) have no schema-invalid variant; the job body always has.
            assert mode is GenerationMode.NEGATIVE and op.method.upper() != "POST", op.label
    assert len(seen) >= (50 if mode is GenerationMode.POSITIVE else 25), seen
    log = fuzz_stack.api.log() if fuzz_stack.api else ""
    assert "Traceback" not in log, log[-3000:]

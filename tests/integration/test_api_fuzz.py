"""The API matches its own OpenAPI document: schemathesis, every check, a real socket.

The API runs from the Procfile's `web:` line on a private Redis (no workers:
accepted jobs wait in the queue), with the defaults users get (the rate limit
on). Schemathesis (`st run`, the command users run) reads `/openapi.json` from
the live server and runs all its phases (the documented examples, coverage of
each constraint's edges, random valid and invalid requests, stateful sequences
over the links it infers) with **all** its checks: no 5xx, every status and
content type documented, every body matching its schema, invalid input refused,
valid input accepted, auth enforced. Bounded by `--max-time`; it must report 0
failures, and the API's log must hold no traceback.

Where a schema cannot say everything: the submit and retry bodies are accepted
by the document's shape but also checked against what only the server knows
(the destination allow-list, the job's state, a run's own rules), so a
schema-valid body there may be answered 422 or 409: `positive_data_acceptance`
is told so for those two operations only (schemathesis.toml beside this file
would hide that; it is here, in the command).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.workers import QueueStack, StartStack

MAX_TIME = 90  # seconds of generation (the phases share it); the whole test stays under 3 min


@pytest.fixture(scope="module")
def fuzz_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(n_workers=0, queue="genblaze-fuzz")


def _config(tmp_path: Path) -> Path:
    """Schemathesis config: the only tuning is which statuses "valid data" may get."""
    path = tmp_path / "schemathesis.toml"
    path.write_text(
        """
# 413 is how an over-large body is refused (GENBLAZE_MAX_BODY_BYTES): a rejection too.
[checks.negative_data_rejection]
expected-statuses = [
  "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
]

[[operations]]
include-name = ["POST /v1/jobs", "POST /v1/jobs/{job_id}/retry"]
# Shape-valid, but refused by rules only the server knows (allow-list, job state).
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "409", "422", "429"]
"""
    )
    return path


@pytest.mark.slow
def test_the_api_matches_its_openapi_document(fuzz_stack: QueueStack, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config(tmp_path)),
        "--no-color",
        "run",
        f"{fuzz_stack.api_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"Authorization: Bearer {fuzz_stack.tokens['acme']}",
        "--max-time",
        str(MAX_TIME),
        "--max-examples",
        "200",
        "--seed",
        "21",
        "--workers",
        "1",  # two workers race in hypothesis' lambda-source cache (an AST recursion error)
        "--request-timeout",
        "10",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    started = time.monotonic()
    run = subprocess.run(  # in tmp_path: schemathesis keeps a crash cache in its cwd
        cmd, capture_output=True, text=True, timeout=MAX_TIME + 120, check=False, cwd=tmp_path
    )
    took = time.monotonic() - started
    # Generated bodies can be megabytes long: keep each line short in the report.
    out = "\n".join(line[:400] for line in (run.stdout + run.stderr).splitlines())
    print(out[-8000:])
    print(f"schemathesis ran {took:.0f}s")
    assert run.returncode == 0, out[-20000:]
    summary = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == [], summary["failures"]
    ops = summary["operations"]
    assert ops["tested"] == ops["total"] >= 9, ops
    cases = summary["test_cases"]
    assert cases["generated"] >= 500 and cases["with_failures"] == 0, cases
    print(f"schemathesis: {cases['generated']} cases, {ops['tested']} operations, 0 failures")
    log = fuzz_stack.api.log() if fuzz_stack.api else ""
    assert "Traceback" not in log, log[-3000:]

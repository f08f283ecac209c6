"""README's first command: `genblaze-ingest demo` ends with a verified, locked manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_stops_what_it_started() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "COLUMNS": "200"},
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "canonical hash verified" in text
    assert "Object Lock GOVERNANCE until" in text
    assert "manifests/" in text and "stopped everything the demo started" in text
    for pattern in ("genblaze-demo-", "-n demo[0-9]@"):  # SeaweedFS dir, worker names
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", pattern

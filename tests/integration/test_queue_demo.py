"""README's first command: `genblaze-ingest demo` ends with a verified, locked manifest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _live_members(groups: set[int]) -> list[str]:
    """Processes (not zombies) still in one of `groups`: only what the demo started."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            state, _ppid, pgid = (p / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgid) in groups and state != "Z":
                cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append(f"{p.name}: {cmdline!r}")
        except (OSError, ValueError):
            continue  # exited while we looked
    return found


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
    assert "manifests/" in text
    # The demo names each process group it started (SeaweedFS, API, workers; Valkey
    # when no Redis runs): none may have a live member left.
    stopped = re.search(r"stopped everything the demo started \(process groups: (.*)\)", text)
    assert stopped, text[-2000:]
    groups = {int(pid) for pid in re.findall(r" (\d+)(?:,|$)", stopped.group(1))}
    names = stopped.group(1)
    assert "weed mini" in names and "web" in names and "demo0" in names and "demo1" in names
    assert len(groups) >= 4, names
    assert _live_members(groups) == []

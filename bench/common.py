"""What every benchmark shares: its source files of random bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


_CLK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes and their live children."""
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _CLK
            for task in Path(f"/proc/{pid}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class CPUMeter:
    """CPU seconds spent by named groups of processes between `start` and `stop`.

    Groups are process trees by pid; ``"bench process"`` is this process (the test CDN
    and the client run in its threads) and ``"child tools"`` the children it waited
    for (s5cmd)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._t0: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        import resource

        out = {name: tree_cpu(pids) for name, pids in self.groups.items()}
        me, kids = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        out["bench process"] = me.ru_utime + me.ru_stime
        out["child tools"] = kids.ru_utime + kids.ru_stime
        return out

    def start(self) -> None:
        self._t0 = self._now()

    def stop(self) -> dict[str, float]:
        now = self._now()
        return {k: now[k] - self._t0[k] for k in now}


def write_random(path: Path, size: int) -> None:
    """Write `size` random bytes in 16 MiB pieces (incompressible, never all in memory)."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def s5cmd_cp(sw: Any, src: str, dst: str, *, timeout: float = 1800) -> float:
    """Seconds for the baseline `s5cmd cp src dst` against the SeaweedFS `sw`.

    Fails with s5cmd's own output when it fails (a baseline that did nothing would
    flatter every ratio).
    """
    exe = Path(sys.executable).parent / "s5cmd"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": sw.access_key,
        "AWS_SECRET_ACCESS_KEY": sw.secret_key,
        "AWS_REGION": "us-east-1",
    }
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(exe), "--endpoint-url", sw.endpoint_url, "cp", src, dst],
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"s5cmd failed: {out.stderr[-2000:]!r} {out.stdout[-2000:]!r}")
    return time.perf_counter() - t0


def start_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`genblaze-ingest api` on `port` with `env` over this process's environment, once its
    /healthz answers 200 (30 s at most); the caller stops it."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "genblaze_s3.cli", "api", "--port", str(port)],
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("API did not start")


# The previous release the A/B benches compare against: main as it stood before issues
# 19-23 (one house, provenance, hard edges, the operator's desk, cost per asset).
PREVIOUS_RELEASE = "a78c6f2"


def json_block(result: dict[str, Any]) -> list[str]:
    """A results page's last lines: the whole result as a fenced JSON block."""
    return ["```json", json.dumps(result, indent=2), "```", ""]


def export_tree(ref: str, into: Path) -> Path:
    """The package of git ``ref`` (``genblaze_s3/`` only), exported with ``git archive``:
    run a child with ``PYTHONPATH=<into>`` (and ``PYTHONSAFEPATH=1``) to import that
    release instead of this checkout's editable install."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "genblaze_s3"], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def baseline_tree(value: str, into: Path) -> Path:
    """``GENBLAZE_BENCH_BASELINE``: a folder holding an earlier ``genblaze_s3/`` (used as
    it is) or a git ref (exported into ``into`` with `export_tree`)."""
    folder = Path(value)
    return folder.resolve() if folder.is_dir() else export_tree(value, into)

"""The one process supervisor of the development tools: spawn, wait until ready, stop.

The demo, the integration tests (tests/support/workers.py) and the benchmarks start
real processes: `weed mini`, `valkey-server`, and the Procfile's `web:` and
`worker:` lines. They all go through this module, so every such process

- runs in its own session (process group), so `stop()` also ends the children a
  Celery prefork pool or a shell forked, and nothing outlives its owner;
- writes stdout and stderr to one log file, which is both the readiness signal
  ("ready." in a Celery log) and what a failure message quotes;
- is started from the Procfile's own command line (through `bash -c "exec ..."`,
  as a process manager would), so what runs here is what runs in production.

Nothing here is used in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
# The Procfile's lines, for an installed package run outside a checkout (no Procfile
# beside it). tests/unit/test_local_tools.py keeps this equal to the Procfile.
FALLBACK_PROCFILE = {
    "web": "python -m genblaze_s3.cli api --host 0.0.0.0 --port ${PORT:-8000}",
    "worker": "celery -A workers worker --loglevel=INFO --pool=${GENBLAZE_WORKER_POOL:-prefork} "
    "--concurrency=${GENBLAZE_WORKER_CONCURRENCY:-2} --without-gossip --without-mingle -E",
}
LOG_TAIL = 3000  # characters of a log quoted when a process fails to come up


class ProcessError(RuntimeError):
    """A supervised process exited or did not become ready in time."""


def procfile_command(kind: str, procfile: Path = PROCFILE) -> str:
    """The command of the Procfile line `kind:` (`web` or `worker`)."""
    if procfile.exists():
        for line in procfile.read_text().splitlines():
            name, sep, cmd = line.partition(":")
            if sep and name.strip() == kind:
                return cmd.strip()
        raise KeyError(f"{procfile} has no {kind!r} line")
    return FALLBACK_PROCFILE[kind]


def wait_until(
    ready: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.1
) -> None:
    """Poll `ready()` until it is true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:.0f}s")
        time.sleep(interval)


@dataclass
class Process:
    """One supervised process (the leader of its own process group) and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the leader to exit (after a signal a test sent); its exit code."""
        return self.proc.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def child_pids(self) -> list[int]:
        """The other live members of this process group (a Celery pool's children)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.proc.pid:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                state, _ppid, pgid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
                if int(pgid) == self.proc.pid and state != "Z":
                    out.append(int(entry.name))
        return out

    def wait_ready(
        self, ready: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.1
    ) -> None:
        """Wait for `ready()`; fail at once, quoting the log, if the process exits first."""

        def check() -> bool:
            if ready():
                return True
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited ({self.proc.returncode}) before {what}; "
                    f"{self.log_path}:\n{self.log()[-LOG_TAIL:]}"
                )
            return False

        try:
            wait_until(check, timeout, f"{self.name}: no {what}", interval=interval)
        except TimeoutError as exc:
            raise ProcessError(f"{exc}; {self.log_path}:\n{self.log()[-LOG_TAIL:]}") from None

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        """Wait until `needle` appears in the log (e.g. Celery's "ready.")."""
        self.wait_ready(lambda: needle in self.log(), timeout, f"{needle!r} in its log")

    def terminate(self) -> None:
        """SIGTERM the group without waiting (stop several processes side by side)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the group (a warm shutdown for Celery), then SIGKILL what is left.

        The SIGKILL goes to the group even when the leader has exited: a prefork
        pool child orphaned by a killed main process is still in the group.
        """
        if self.running():
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    name: str | None = None,
) -> Process:
    """Start `argv` in a new session, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the child holds its own descriptor
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name or Path(argv[0]).name, proc, log_path)


def spawn_procfile(
    kind: str,
    *,
    env: Mapping[str, str],
    log_path: Path,
    extra_args: str = "",
    name: str | None = None,
) -> Process:
    """Run the Procfile's `kind:` line as a process manager would (a shell, then exec).

    `extra_args` are appended (Celery's `-n name@%h`, the API's `--host`): the last
    occurrence of an option wins, so they refine the Procfile's command, not replace it.
    """
    cmd = procfile_command(kind) + (f" {extra_args}" if extra_args else "")
    return spawn(
        ["bash", "-c", f"exec {cmd}"], log_path=log_path, env=env, cwd=ROOT, name=name or kind
    )


class Supervisor:
    """Everything one run started, stopped in reverse order whatever happens.

    `add` takes a stop callable (or a Process) and the processes it ends, so a run
    can say which process groups it stopped; `stop_all` runs each stop once, so a
    failure while starting the fourth service still stops the first three.
    """

    def __init__(self) -> None:
        self._stops: list[Callable[[], Any]] = []
        self._processes: list[Process] = []

    def add(
        self, item: Process | Callable[[], Any], *, processes: Sequence[Process | None] = ()
    ) -> None:
        if isinstance(item, Process):
            self._processes.append(item)
            self._stops.append(item.stop)
        else:
            self._stops.append(item)
        self._processes += [p for p in processes if p is not None]

    def processes(self) -> list[Process]:
        """Every process handed to `add`, in start order."""
        return list(self._processes)

    def stop_all(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            with contextlib.suppress(Exception):
                stop()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

"""The development tools' rules: the library never imports its CLI; one supervisor works."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from genblaze_s3.local.supervisor import (
    FALLBACK_PROCFILE,
    PROCFILE,
    ProcessError,
    Supervisor,
    procfile_command,
    spawn,
    wait_until,
)

PACKAGE = Path(__file__).resolve().parents[2] / "genblaze_s3"


def _is_cli(path: Path) -> bool:
    """The CLI itself: genblaze_s3/cli.py, or a genblaze_s3/cli/ package."""
    return path == PACKAGE / "cli.py" or (PACKAGE / "cli") in path.parents


def _imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Every module an `import` / `from ... import` in the file names (relative ones resolved)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_no_library_module_imports_the_cli() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _is_cli(path):
            continue
        if any(
            m == "genblaze_s3.cli" or m.startswith("genblaze_s3.cli.")
            for m in _imported_modules(path)
        ):
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert not offenders, f"library modules importing genblaze_s3.cli: {offenders}"


def test_no_library_module_imports_the_development_tools() -> None:
    """genblaze_s3.local (embedded services, demo, supervisor) is for development only:
    the CLI's `demo` command is its one user inside the package."""
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent != PACKAGE / "local" and not _is_cli(path)
        if any(m.startswith("genblaze_s3.local") for m in _imported_modules(path))
    ]
    assert not offenders, f"library modules importing genblaze_s3.local: {offenders}"


def test_the_import_check_sees_relative_and_absolute_imports() -> None:
    """The checks above are not vacuous: they see each way of importing a module."""
    probe = PACKAGE / "local" / "probe.py"  # parsed as if it lived there; never written
    for text in (
        "from genblaze_s3.cli import main\n",
        "import genblaze_s3.cli\n",
        "from .. import cli\n",
        "def f():\n    from ..cli import main\n",
    ):
        assert "genblaze_s3.cli" in _imported_modules(probe, text), text


def test_the_fallback_procfile_is_the_procfile() -> None:
    """Outside a checkout the demo runs the same commands as the Procfile."""
    assert PROCFILE.exists()
    for kind, cmd in FALLBACK_PROCFILE.items():
        assert procfile_command(kind) == cmd
    assert (
        procfile_command("worker", PROCFILE.with_name("no-such-Procfile"))
        == FALLBACK_PROCFILE["worker"]
    )


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    """A child the leader forked (a prefork pool child) dies with it."""
    log = tmp_path / "p.log"
    p = spawn(["bash", "-c", "sleep 300 & echo child=$!; wait"], log_path=log)
    p.wait_for_log("child=", timeout=10)
    child = int(p.log().split("child=")[1].split()[0])
    assert os.getpgid(child) == p.pid and child in p.child_pids()
    p.stop(timeout=5)
    assert not p.running()
    # SIGKILL is delivered asynchronously: the child is gone once the kernel has run
    # its exit (it then shows as a zombie or vanishes), which takes a moment on a
    # loaded machine. Wait for that event, bounded.
    wait_until(lambda: not _alive(child), 5, f"child {child} still running after stop()")


def _alive(pid: int) -> bool:
    """Running, not a zombie left for an init that does not reap (as in containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_process_that_exits_before_it_is_ready_fails_at_once_with_its_log(
    tmp_path: Path,
) -> None:
    p = spawn(["bash", "-c", "echo boom: bad setting; exit 3"], log_path=tmp_path / "x.log")
    with pytest.raises(ProcessError, match="(?s)exited \\(3\\).*boom: bad setting"):
        p.wait_for_log("ready.", timeout=30)


def test_supervisor_stops_in_reverse_order_even_when_a_stop_fails() -> None:
    order: list[str] = []

    def fail() -> None:
        order.append("b")
        raise RuntimeError("stop failed")

    with Supervisor() as s:
        s.add(lambda: order.append("a"))
        s.add(fail)
        s.add(lambda: order.append("c"))
    assert order == ["c", "b", "a"]


def test_procfile_env_names_store_broker_queue_and_the_workers_own_credentials() -> None:
    from types import SimpleNamespace

    from genblaze_s3.local.stack import procfile_env

    s3 = SimpleNamespace(endpoint_url="http://127.0.0.1:1", access_key="ak", secret_key="sk")
    base = {"GENBLAZE_BROKER_URL": "amqp://elsewhere//", "PYTHONPATH": "/mine", "PATH": "/bin"}
    env = procfile_env(redis_url="redis://127.0.0.1:2/0", s3=s3, queue="q", base=base)
    assert "GENBLAZE_BROKER_URL" not in env  # the store's Redis is the broker
    assert env["GENBLAZE_QUEUE"] == "q" and env["AWS_SECRET_ACCESS_KEY"] == "sk"
    assert env["PYTHONPATH"].endswith(os.pathsep + "/mine")
    rabbit = procfile_env(
        redis_url="redis://x", s3=s3, broker_url="amqp://b//", extra={"GENBLAZE_QUEUE": "z"}
    )
    assert rabbit["GENBLAZE_BROKER_URL"] == "amqp://b//" and rabbit["GENBLAZE_QUEUE"] == "z"

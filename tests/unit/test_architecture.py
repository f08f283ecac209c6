"""The house's shape, checked: layer contracts, no import cycles, a leaf settings module,
rooms of a readable size (docs/ARCHITECTURE.md). These fail on a change that tangles it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

import genblaze_s3
from genblaze_s3 import settings
from genblaze_s3.transfer import config as transfer_config

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(genblaze_s3.__file__).parent
MAX_MODULES_PER_FOLDER = 20


def test_layer_contracts_hold() -> None:
    """`lint-imports` with pyproject's contracts (layers, leaf settings, no Celery in the
    library, nothing imports the CLI, acyclic rooms)."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the dev extra"
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    kept = run.stdout.count(" KEPT")
    assert kept >= 4, run.stdout


def test_no_module_sits_on_an_import_cycle() -> None:
    """Every import counts, including those inside functions and under TYPE_CHECKING."""
    graph = grimp.build_graph("genblaze_s3", include_external_packages=False)
    on_cycles = sorted(
        m
        for m in graph.modules
        for imported in graph.find_modules_directly_imported_by(m)
        if graph.find_shortest_chain(importer=imported, imported=m) is not None
    )
    assert on_cycles == []


def test_settings_is_a_leaf() -> None:
    graph = grimp.build_graph("genblaze_s3", include_external_packages=False)
    assert graph.find_modules_directly_imported_by("genblaze_s3.settings") == set()


def test_no_folder_is_crowded() -> None:
    crowded = {
        str(folder.relative_to(PACKAGE.parent)): n
        for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir())]
        if (n := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}


def test_each_room_says_what_lives_there_and_what_it_may_import() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = (init.read_text().split('"""') + ["", ""])[1]
        assert doc.strip(), f"{init.relative_to(PACKAGE.parent)} has no docstring"
    for room in ("store", "submit", "worker", "finalize", "client"):
        doc = (PACKAGE / "ingest" / room / "__init__.py").read_text()
        assert "What lives here" in doc and "import" in doc, room


def test_the_leaf_repeats_one_library_default_and_they_agree() -> None:
    """settings.py may not import transfer/, so it states the source size cap itself."""
    assert settings.DEFAULT_MAX_SOURCE_BYTES == transfer_config.DEFAULT_MAX_SOURCE_BYTES

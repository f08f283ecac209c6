"""README's configuration table is the one generated from genblaze_s3.settings."""

from __future__ import annotations

import pytest

from genblaze_s3 import settings_doc
from genblaze_s3.settings_doc import describe


def test_readme_configuration_table_matches_the_settings_module() -> None:
    readme = settings_doc.README.read_text()
    assert readme == settings_doc.render(readme), (
        "README.md's configuration table is stale: run python -m genblaze_s3.settings_doc"
    )
    for name, *_ in describe():
        assert f"| `{name}` |" in readme


def test_a_new_setting_makes_the_check_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = describe() + [("GENBLAZE_NEW_THING", "int", "1", "a setting nobody documented")]
    monkeypatch.setattr(settings_doc, "describe", lambda: rows)
    assert settings_doc.main(["--check"]) == 1

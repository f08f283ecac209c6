"""The fenced code blocks of README.md and docs/*.md, so tests can run each one.

Why: a code sample that nobody runs drifts from the code (docs/OPERATOR.md described
`verify_signature`, which no longer existed). tests/integration/test_doc_examples.py
runs every block found here; a block no test knows fails the suite, and a renamed
function or option fails the block's test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and its text (indent removed)."""

    doc: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def key(self) -> str:
        """`doc: first line`: how a test names the block (stable when others move)."""
        first = next((ln.strip() for ln in self.text.splitlines() if ln.strip()), "")
        return f"{self.doc}: {first}"

    def code(self, substitutions: list[tuple[str, str]] | None = None) -> str:
        """The text with each (old, new) applied; each `old` must be in the block, so a
        changed sample fails loudly instead of running unadapted."""
        text = self.text
        for old, new in substitutions or []:
            if old not in text:
                raise AssertionError(f"{self.key}: {old!r} is no longer in the sample")
            text = text.replace(old, new)
        return text

    def compile(self, substitutions: list[tuple[str, str]] | None = None) -> object:
        """Python code whose tracebacks point into the document (padded to its lines)."""
        return compile("\n" * self.line + self.code(substitutions), str(ROOT / self.doc), "exec")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks() -> list[Block]:
    """Every fenced block of every document, in order."""
    found = []
    for path in documents():
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = _FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            indent = len(m.group("indent"))
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
                j += 1
            found.append(
                Block(str(path.relative_to(ROOT)), i + 1, m.group("lang"), "\n".join(body) + "\n")
            )
            i = j + 1
    return found

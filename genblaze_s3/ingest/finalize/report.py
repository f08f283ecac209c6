"""The verify report: one finding per check, a verdict, an exit code, a one-line summary.

Why a verdict and not "ok": "nothing changed" and "a key we trust made this" are
different claims. A verifier without a trusted key can prove the first (every
object matches the manifest) but not the second (a bucket writer can produce a
self-consistent manifest and sign it with a key of their own), so the report
says which it proved:

============  ====  ==========================================================
verdict       exit  meaning
============  ====  ==========================================================
verified      0     content intact and signed by a trusted key (origin proven)
content-only  0     content intact; origin not checked, as the user asked
unproven      3     content intact; origin not proven (unsigned, or no trusted
                    key for its signature): give a key, or ask content-only
failed        1     some finding failed (each FAIL line names it)
============  ====  ==========================================================

(2 is a usage error: a bad location or key, from the CLI.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    OK = "ok"
    NOTE = "note"  # reported, not a failure
    FAIL = "fail"


class Verdict(StrEnum):
    VERIFIED = "verified"
    CONTENT_ONLY = "content-only"
    UNPROVEN = "unproven"
    FAILED = "failed"


EXIT_CODES = {
    Verdict.VERIFIED: 0,
    Verdict.CONTENT_ONLY: 0,
    Verdict.FAILED: 1,
    Verdict.UNPROVEN: 3,
}
EXIT_CODES_HELP = (
    "exit codes: 0 verified (content intact, signed by a trusted key) or content intact "
    "with --content-only, 1 a check failed, 2 usage, 3 content intact but origin not "
    "proven (unsigned, or no trusted key for its signature)"
)


@dataclass(frozen=True)
class Finding:
    """One checked fact about the manifest; ``line()`` is how the CLI prints it."""

    level: Level
    check: str  # manifest | record | hash | signature | envelope | asset | lock | version
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level.value.upper():4} {self.check:9} {self.subject}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "level": self.level.value,
            "check": self.check,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass
class VerifyReport:
    """Every finding, in check order, and what they add up to (see the module doc)."""

    bucket: str
    key: str
    findings: list[Finding] = field(default_factory=list)
    content_only: bool = False  # the user asked for content-only verification
    origin_proven: bool = False  # a trusted key's valid signature covers the manifest
    key_id: str | None = None  # the key id the manifest's signature names
    signed: bool = False  # the manifest carries a signature
    envelope_key: str | None = None  # the DSSE envelope checked, when there was one

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.FAIL]

    @property
    def content_intact(self) -> bool:
        """No failure but of a signature: every object and record matches the manifest."""
        return not any(f.check != "signature" for f in self.failures)

    @property
    def verdict(self) -> Verdict:
        if self.failures:
            return Verdict.FAILED
        if self.origin_proven:
            return Verdict.VERIFIED
        return Verdict.CONTENT_ONLY if self.content_only else Verdict.UNPROVEN

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def ok(self) -> bool:
        """Exit 0: verified, or content intact when content-only was asked for."""
        return self.exit_code == 0

    def lines(self) -> Iterator[str]:
        for f in self.findings:
            yield f.line()

    def add(self, level: Level, check: str, subject: str, message: str) -> None:
        self.findings.append(Finding(level, check, subject, message))

    def summary(self) -> str:
        """One line saying what was proved (the CLI's last line)."""
        verdict = self.verdict
        where = self.location
        if verdict is Verdict.FAILED:
            first = self.failures[0]
            more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            return f"FAILED {where}: {first.check} {first.subject}: {first.message}{more}"
        envelope = ", in-toto envelope agrees" if self.envelope_key else ""
        if verdict is Verdict.VERIFIED:
            return f"VERIFIED {where}: content intact, origin proven by key {self.key_id}{envelope}"
        why = (
            f"signed by key {self.key_id}, not checked against a trusted key"
            if self.signed
            else "the manifest is not signed"
        )
        if verdict is Verdict.CONTENT_ONLY:
            return f"CONTENT INTACT {where}: origin not checked ({why})"
        return (
            f"UNPROVEN {where}: content intact, origin not proven ({why}); give "
            "--public-key / --keys-file, or --content-only to accept content alone"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "ok": self.ok,
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "content_intact": self.content_intact,
            "origin_proven": self.origin_proven,
            "signed": self.signed,
            "key_id": self.key_id,
            "envelope": f"s3://{self.bucket}/{self.envelope_key}" if self.envelope_key else None,
            "summary": self.summary(),
            "findings": [f.to_json() for f in self.findings],
        }

"""What `submit` sends: URLs from the command line and `--from-file`, grouped into jobs.

Why here and pure: a list of 60,000 URLs cannot go on a command line (`Argument list
too long`) nor in one job (the API takes at most the tenant's `max_assets_per_job`).
This module parses the file once, at the boundary, into typed entries (or an error
naming the line), and plans the jobs; `jobs.py` only sends them.

File format, one asset per line (blank lines and lines starting with `#` are skipped):

    https://cdn.example.com/a.mp4
    {"url": "https://cdn.example.com/b.png", "media_type": "image/png",
     "sha256": "<64 hex: the expected hash; the copy fails checksum_mismatch otherwise>",
     "labels": {"team": "video"}}

(a JSON object on one line). A job has one set of labels, so lines with different
labels go to different jobs; `--label` options apply to every job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SourceFileError(ValueError):
    """A line of the URL list cannot be read; the message names the line."""


class FileEntry(BaseModel):
    """One JSON line of the list: the API's asset fields plus the job's labels."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192)
    media_type: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    labels: dict[str, str] = Field(default_factory=dict)

    def asset(self) -> dict[str, Any]:
        """The asset as `POST /v1/jobs` takes it."""
        body: dict[str, Any] = {"url": self.url}
        if self.media_type:
            body["media_type"] = self.media_type
        if self.sha256:
            body["sha256"] = self.sha256
        return body


def parse_line(text: str, where: str) -> FileEntry | None:
    """One line as an entry; None for a blank or `#` line. `where` names it in errors."""
    line = text.strip()
    if not line or line.startswith("#"):
        return None
    if not line.startswith("{") and any(c.isspace() for c in line):
        raise SourceFileError(f"{where}: expected one URL or a JSON object per line")
    try:
        if line.startswith("{"):
            return FileEntry.model_validate_json(line)
        return FileEntry(url=line)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "line"
        raise SourceFileError(f"{where}: {field}: {first['msg']}") from None


def read_entries(lines: Iterable[str], name: str) -> list[FileEntry]:
    """Every entry of a file (or stdin) called `name` in messages, in order."""
    entries = []
    for number, text in enumerate(lines, 1):
        entry = parse_line(text, f"{name}:{number}")
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class PlannedJob:
    """One job to submit: its assets and labels."""

    assets: list[dict[str, Any]]
    labels: dict[str, str]


def plan_jobs(
    entries: list[FileEntry], max_assets: int, common_labels: dict[str, str]
) -> list[PlannedJob]:
    """Entries grouped by labels (in order of first appearance), each group cut into
    jobs of at most `max_assets` assets. `common_labels` (from `--label`) win."""
    if max_assets < 1:
        raise ValueError("max_assets must be positive")
    groups: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
    for e in entries:
        labels = {**e.labels, **common_labels}
        groups.setdefault(tuple(sorted(labels.items())), []).append(e.asset())
    jobs = []
    for key, assets in groups.items():
        for start in range(0, len(assets), max_assets):
            jobs.append(PlannedJob(assets[start : start + max_assets], dict(key)))
    return jobs

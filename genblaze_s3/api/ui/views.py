"""Typed view models of the /ui pages, built from the store's documents (pure).

Why a layer between the store's JSON and the HTML: the routes only fetch and hand
over, the renderers (render.py, fleet_render.py) only format, and what a page shows
(percentages, the failed part of a bar, which actions are offered) is decided here
once, unit-tested without a server, and shared by the HTML and the JSON the page's
script polls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genblaze_s3.humanize import human_age, human_size, retry_note
from genblaze_s3.ingest.models import TERMINAL_JOB_STATES
from genblaze_s3.ingest.transitions import (
    REOPENABLE_JOB_STATES,
    RETRYABLE_ASSET_STATES,
    progress_percent,
)

# State rules are transitions.py's; the pages read them as the document's strings.
TERMINAL = frozenset(s.value for s in TERMINAL_JOB_STATES)
REOPENABLE = frozenset(s.value for s in REOPENABLE_JOB_STATES)
RETRYABLE_ASSETS = frozenset(s.value for s in RETRYABLE_ASSET_STATES)


def age(iso: str) -> str:
    return f"{human_age(datetime.fromisoformat(iso.replace('Z', '+00:00')))} ago"


def retry_text(asset: dict[str, Any]) -> str:
    """An asset between two tries: "retrying: try 2 of 6 in 4s (code: message)"."""
    r = asset.get("retry")  # the store drops it when the asset ends
    if not r:
        return ""
    when = datetime.fromisoformat(str(r["next_try_at"]).replace("Z", "+00:00"))
    err = r["last_error"]
    return retry_note(r["attempt"], r["of"], err["code"], err.get("message", ""), when)


def percent(doc: dict[str, Any]) -> int:
    """Progress of a job document (transitions.progress_percent, as the CLI shows it)."""
    p = doc["progress"]
    return progress_percent(p["bytes_done"], p["bytes_total"], p["assets_done"], p["assets_total"])


@dataclass(frozen=True)
class Bar:
    """A progress bar in two parts: what went well (blue) and what failed (red).

    A failed job's bar is red where its assets did not store; a partly failed job
    shows both parts; a succeeded job is one full blue bar.
    """

    ok: int  # percent, 0-100
    failed: int  # percent, 0-100, ok + failed <= 100

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Bar:
        counts = doc.get("counts") or {}
        total = doc["progress"]["assets_total"]
        stored = counts.get("stored", 0) + counts.get("deduplicated", 0)
        failed_assets = counts.get("failed", 0)
        if doc["state"] == "failed":
            ok = int(100 * stored / total) if total else 0
            return cls(ok, 100 - ok)
        bad = -(-100 * failed_assets // total) if total and failed_assets else 0
        return cls(min(percent(doc), 100 - bad), bad)


@dataclass(frozen=True)
class JobRow:
    job_id: str
    state: str
    percent: int
    bar: Bar
    assets: str  # "3/4 (1 failed)"
    size: str
    age: str
    labels: str

    @classmethod
    def of(cls, j: dict[str, Any]) -> JobRow:
        p = j["progress"]
        failed = j["counts"].get("failed", 0)
        return cls(
            job_id=j["job_id"],
            state=j["state"],
            percent=percent(j),
            bar=Bar.of(j),
            assets=f"{p['assets_done']}/{p['assets_total']}"
            + (f" ({failed} failed)" if failed else ""),
            size=human_size(p["bytes_total"] or p["bytes_done"]),
            age=age(j["created_at"]),
            labels=", ".join(f"{k}={v}" for k, v in j["labels"].items()),
        )

    def json(self) -> dict[str, Any]:
        """What the jobs list's script refreshes (jobs.js)."""
        return {
            "job_id": self.job_id,
            "state": self.state,
            "percent": self.percent,
            "ok_pct": self.bar.ok,
            "failed_pct": self.bar.failed,
            "assets": self.assets,
            "size": self.size,
        }


@dataclass(frozen=True)
class JobsPage:
    tenant: str
    csrf: str
    state: str | None
    states: list[str]
    rows: list[JobRow]
    next_cursor: str | None


@dataclass(frozen=True)
class AssetRow:
    asset_id: str
    state: str
    bytes: str
    where: str  # key once stored, else the (redacted) source URL
    error: str
    replaceable: bool  # offer a fresh-URL field for the retry form


@dataclass(frozen=True)
class JobPage:
    job_id: str
    csrf: str
    state: str
    percent: int
    bar: Bar
    assets_done: str
    bytes: str
    created: str
    labels: str
    counts: list[tuple[str, int]]
    filter_state: str | None
    errors: list[tuple[str, int]]
    job_error: str
    manifest_key: str | None
    locked_until: str | None
    can_retry: bool
    can_cancel: bool
    assets: list[AssetRow] = field(default_factory=list)
    next_cursor: str | None = None

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL

    @classmethod
    def of(cls, doc: dict[str, Any], filter_state: str | None, csrf: str) -> JobPage:
        p = doc["progress"]
        retryable = doc["state"] in REOPENABLE
        manifest = doc["manifest"]
        err = doc["error"]
        return cls(
            job_id=doc["job_id"],
            csrf=csrf,
            state=doc["state"],
            percent=percent(doc),
            bar=Bar.of(doc),
            assets_done=f"{p['assets_done']}/{p['assets_total']}",
            bytes=f"{human_size(p['bytes_done'])} / {human_size(p['bytes_total'])}",
            created=age(doc["created_at"]),
            labels=", ".join(f"{k}={v}" for k, v in doc["labels"].items()),
            counts=[(k, v) for k, v in doc["counts"].items() if v],
            filter_state=filter_state,
            errors=sorted(doc["error_codes"].items()),
            job_error=f"{err['code']}: {err.get('message') or ''}" if err else "",
            manifest_key=manifest["key"] or None,
            locked_until=manifest["locked_until"] or None,
            can_retry=retryable,
            can_cancel=doc["state"] in ("queued", "running"),
            assets=[
                AssetRow(
                    asset_id=a["asset_id"],
                    state=a["state"],
                    bytes=f"{human_size(a['bytes_done'])} / {human_size(a['bytes_total'])}",
                    where=a["key"] or a["source_url"] or "",
                    error=f"{a['error']['code']}: {a['error']['message']}"
                    if a["error"]
                    else retry_text(a),
                    replaceable=retryable and a["state"] in RETRYABLE_ASSETS,
                )
                for a in doc["assets"]
            ],
            next_cursor=doc.get("next_cursor"),
        )

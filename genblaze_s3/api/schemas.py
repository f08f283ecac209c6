"""Request/response bodies of the HTTP API (the OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from genblaze_s3.api.problems import FieldError, Problem
from genblaze_s3.ingest.models import DestinationSpec, JobAccepted, LockPolicy
from genblaze_s3.ingest.store.cursors import ASSET_CURSOR, JOB_CURSOR
from genblaze_s3.ingest.validation import JOB_ID, LABEL_FILTER, parse_rfc3339

__all__ = [
    "AssetCursorParam",
    "AssetIn",
    "DateTimeParam",
    "FieldError",
    "JobAccepted",
    "JobCreate",
    "JobCursorParam",
    "JobId",
    "LabelFilterParam",
    "Problem",
]

# Parameters every route reads the same way (the /ui pages too): the shape is checked
# by FastAPI (a 422 naming the parameter).
JobId = Annotated[str, Path(pattern=JOB_ID.pattern, description="32 hex digits")]
DateTimeParam = Annotated[
    datetime | None,
    BeforeValidator(parse_rfc3339),
    Query(description="RFC 3339, e.g. `2026-01-31T12:00:00Z`"),
]
LabelFilterParam = Annotated[
    str | None, Query(pattern=LABEL_FILTER, description="`key=value`, or `key` alone")
]
# Cursors are checked by their parser (a 422 `invalid_cursor`), not by FastAPI: the
# pattern is only published, and it is the parser's own regular expression.
JobCursorParam = Annotated[
    str | None,
    Query(
        description="the `next_cursor` of the previous page, as given (opaque)",
        json_schema_extra={"pattern": JOB_CURSOR.pattern},
    ),
]
AssetCursorParam = Annotated[
    str | None,
    Query(
        description="the `next_cursor` of the previous page, as given (opaque)",
        json_schema_extra={"pattern": ASSET_CURSOR.pattern},
    ),
]


class AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192)
    media_type: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class JobCreate(BaseModel):
    """Either `assets` (bare URLs) or `run` (a genblaze Run JSON), plus where to put them."""

    model_config = ConfigDict(extra="forbid")

    assets: list[AssetIn] | None = Field(default=None, max_length=10_000)
    run: dict[str, Any] | None = None
    destination: DestinationSpec
    manifest_lock: LockPolicy | None = None
    notify_url: str | None = Field(default=None, max_length=2048)
    refresh_url: str | None = Field(
        default=None,
        max_length=2048,
        description="POSTed (signed like webhooks) for a fresh URL when a source expires; "
        'answer {"url": ...}.',
    )
    source_ready_within: float | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds after submit during which a source's 404 means 'not ready yet'.",
    )
    labels: dict[str, str] | None = Field(
        default=None, description="up to 16 `key: value` pairs to find the job by"
    )

"""Jobs a tenant can find, page, cancel and retry: `/v1/jobs...` reads and actions.

Every read costs a bounded number of Redis commands whatever the job's size (see
ingest/store/listing.py); a job of another tenant answers exactly like a missing one.
No `from __future__ import annotations` here: the route signatures use the tenant
dependency passed in at runtime, which FastAPI must see as an object.
"""

import json
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from genblaze_s3.api.problems import problem_response
from genblaze_s3.api.schemas import (
    AssetCursorParam,
    DateTimeParam,
    JobCursorParam,
    JobId,
    LabelFilterParam,
)
from genblaze_s3.ingest.errors import JobNotFoundError
from genblaze_s3.ingest.models import (
    AssetPage,
    AssetState,
    JobList,
    JobState,
    JobView,
    RetryAccepted,
)
from genblaze_s3.ingest.store import listing
from genblaze_s3.ingest.store.cursors import parse_asset_cursor, parse_job_cursor
from genblaze_s3.ingest.submit.retry import Replacement
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.validation import (
    check_url,
    epoch_seconds,
    is_job_id,
)


class AssetReplacement(BaseModel):
    """A fresh source for one failed asset (e.g. its CDN URL was re-signed)."""

    model_config = ConfigDict(extra="forbid")

    asset_id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=8192)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replacements: list[AssetReplacement] = Field(default_factory=list, max_length=10_000)


class DocumentCache:
    """Job documents by (job_id, version): many clients polling one job cost one read.

    Every store write bumps the job's version, so a cached document is served
    only while it is exactly current. Bounded LRU; thread-safe.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(64)]

    def building(self, job_id: str) -> threading.Lock:
        """The lock one rebuild of `job_id`'s document holds (a few stripes, bounded)."""
        return self._stripes[hash(job_id) % len(self._stripes)]

    def get(self, job_id: str, version: int) -> str | None:
        """The cached document when it is at `version` or newer (a newer one is fresher
        than what the caller asked for, never staler)."""
        with self._lock:
            item = self._items.get(job_id)
            if item is None or item[0] < version:
                return None
            self._items.move_to_end(job_id)
            return item[1]

    def put(self, job_id: str, version: int, doc: str) -> None:
        with self._lock:
            self._items[job_id] = (version, doc)
            self._items.move_to_end(job_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def add_job_routes(app: FastAPI, service: IngestService, tenant_dep: Any) -> None:
    """Register list / get / assets / cancel / retry on `app`; `tenant_dep` is the
    dependency that yields the caller's tenant (or answers 401/429)."""
    store = service.store
    cache = DocumentCache()

    def owned_version(job_id: str, who: str) -> int:
        # An id that cannot be one never reaches the store: same 404 as an unknown id.
        tv = store.job_version(job_id) if is_job_id(job_id) else None
        if tv is None or tv[0] != who:
            raise JobNotFoundError("job not found")  # the same answer for "not yours"
        return tv[1]

    def owned_doc(job_id: str, who: str, limit: int = listing.DEFAULT_PAGE) -> str:
        version = owned_version(job_id, who)
        if limit != listing.DEFAULT_PAGE:
            return build(job_id, who, limit)
        if (doc := cache.get(job_id, version)) is not None:
            return doc
        # Single flight: when a write bumps the version, the polls that arrive meanwhile
        # wait for one rebuild instead of each reading the same page from Redis.
        with cache.building(job_id):
            if (doc := cache.get(job_id, version)) is not None:
                return doc
            return build(job_id, who, limit)

    def build(job_id: str, who: str, limit: int) -> str:
        found = store.job_document(job_id, limit=limit)
        if found is None or found[0].tenant != who:
            raise JobNotFoundError("job not found")
        summary, doc = found
        if limit == listing.DEFAULT_PAGE:
            cache.put(job_id, summary.version, doc)
        return doc

    app.state.owned_doc = owned_doc
    app.state.owned_version = owned_version

    @app.get("/v1/jobs", response_model=JobList)
    def list_jobs(
        who: Annotated[str, Depends(tenant_dep)],
        limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE)] = 50,
        cursor: JobCursorParam = None,
        state: JobState | None = None,
        created_after: DateTimeParam = None,
        created_before: DateTimeParam = None,
        label: LabelFilterParam = None,
    ) -> Response:
        """The caller's jobs, newest first; `next_cursor` continues the listing.
        Dates without a zone are UTC."""
        after = parse_job_cursor(cursor)
        flt = listing.JobFilter(
            state=state,
            label=label,
            created_after=epoch_seconds(created_after) if created_after else None,
            created_before=epoch_seconds(created_before) if created_before else None,
        )
        page = store.list_jobs(who, flt, after=after, limit=limit)
        return Response(json.dumps(page, separators=(",", ":")), media_type="application/json")

    @app.get("/v1/jobs/{job_id}", response_model=JobView, name="get_job")
    def get_job(
        job_id: JobId,
        who: Annotated[str, Depends(tenant_dep)],
        limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE)] = listing.DEFAULT_PAGE,
    ) -> Response:
        """The job summary (state, progress, counts by state, error codes, manifest)
        plus the first page of its assets; `next_cursor` pages the rest."""
        return Response(owned_doc(job_id, who, limit), media_type="application/json")

    @app.get("/v1/jobs/{job_id}/assets", response_model=AssetPage)
    def job_assets(
        job_id: JobId,
        who: Annotated[str, Depends(tenant_dep)],
        state: AssetState | None = None,
        cursor: AssetCursorParam = None,
        limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE)] = listing.DEFAULT_PAGE,
    ) -> Response:
        """A page of the job's assets in submission order, optionally of one state."""
        after = parse_asset_cursor(cursor)
        owned_version(job_id, who)
        page = store.asset_page(job_id, state=state, after=after, limit=limit)
        return Response(json.dumps(page, separators=(",", ":")), media_type="application/json")

    @app.delete("/v1/jobs/{job_id}", response_model=JobView)
    def cancel(job_id: JobId, who: Annotated[str, Depends(tenant_dep)]) -> Response:
        """Cancel: running copies stop and abort their uploads; no manifest is written."""
        owned_version(job_id, who)
        state = service.cancel(job_id)
        doc = owned_doc(job_id, who)
        if state != JobState.CANCELED:
            return problem_response(409, f"job is {json.loads(doc)['state']}", "not_cancelable")
        return Response(doc, media_type="application/json")

    @app.post(
        "/v1/jobs/{job_id}/retry",
        status_code=202,
        response_model=RetryAccepted,
    )
    def retry(
        job_id: JobId, who: Annotated[str, Depends(tenant_dep)], body: RetryRequest | None = None
    ) -> RetryAccepted:
        """Re-queue a failed or canceled job's failed, canceled (and never-sent) assets,
        optionally from fresh URLs; the job runs again and, once every asset is stored,
        writes and locks its manifest. 409 for a job that is running or succeeded."""
        replacements = body.replacements if body else []
        for i, r in enumerate(replacements):  # the shape first: a 422 names the field
            check_url(r.url, f"replacements.{i}.url")
        owned_version(job_id, who)
        reps = {r.asset_id: Replacement(r.url, r.sha256) for r in replacements}
        ids = service.retry(job_id, reps)
        return RetryAccepted(job_id=job_id, state=JobState.RUNNING, retried=ids)

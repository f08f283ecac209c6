"""A tenant's /ui pages: jobs list, job page, submit, retry, cancel.

Routes only fetch (through the same bounded-cost listing functions as the JSON
API), build a view model (views.py) and hand it to a renderer (render.py). Who
may call is declared per route (door.py's dependencies), never checked inline.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from genblaze_s3.api.events import EventHub, job_events
from genblaze_s3.api.schemas import AssetCursorParam, JobCursorParam, JobId
from genblaze_s3.api.ui import render
from genblaze_s3.api.ui.door import TenantJson, TenantPage, check_form, require_same_origin
from genblaze_s3.api.ui.views import JobPage, JobRow, JobsPage
from genblaze_s3.ingest.errors import IngestError
from genblaze_s3.ingest.models import AssetState, DestinationSpec, JobState
from genblaze_s3.ingest.store import listing
from genblaze_s3.ingest.store.cursors import parse_asset_cursor, parse_job_cursor
from genblaze_s3.ingest.submit.retry import Replacement
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.submit.submission import build_submission, run_from_urls

JOB_STATES = [s.value for s in JobState]
ASSET_STATES = {s.value for s in AssetState}


def html(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers=render.SECURITY_HEADERS)


def tenant_router(service: IngestService, hub: EventHub) -> APIRouter:
    """The tenant's pages over `service` (its store) and `hub` (job events)."""
    store = service.store
    router = APIRouter(include_in_schema=False)
    posts = APIRouter(include_in_schema=False, dependencies=[Depends(require_same_origin)])

    def rows(who: str, state: str | None, cursor: str | None) -> dict[str, Any]:
        flt = listing.JobFilter(state=JobState(state) if state else None)
        return store.list_jobs(who, flt, after=parse_job_cursor(cursor), limit=50)

    @router.get("/ui")
    def jobs_page(
        user: TenantPage, state: str | None = None, cursor: JobCursorParam = None
    ) -> HTMLResponse:
        state = state if state in JOB_STATES else None
        found = rows(user.who.name, state, cursor)
        view = JobsPage(
            tenant=user.who.name,
            csrf=user.csrf,
            state=state,
            states=JOB_STATES,
            rows=[JobRow.of(j) for j in found["jobs"]],
            next_cursor=found["next_cursor"],
        )
        return html(render.jobs(view))

    @router.get("/ui/jobs.json")
    def jobs_json(
        user: TenantJson, state: str | None = None, cursor: JobCursorParam = None
    ) -> JSONResponse:
        state = state if state in JOB_STATES else None
        found = rows(user.who.name, state, cursor)
        return JSONResponse({"jobs": [JobRow.of(j).json() for j in found["jobs"]]})

    @posts.post("/ui/jobs")
    def submit(
        user: TenantPage,
        csrf: Annotated[str, Form()] = "",
        urls: Annotated[str, Form(max_length=200_000)] = "",
        bucket: Annotated[str, Form(max_length=63)] = "",
        endpoint_url: Annotated[str, Form(max_length=2048)] = "",
        labels: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        check_form(user, csrf)
        try:
            dest = DestinationSpec(bucket=bucket.strip(), endpoint_url=endpoint_url.strip() or None)
            items: list[tuple[str, str | None, str | None]] = [
                (u.strip(), None, None) for u in urls.splitlines() if u.strip()
            ]
            if not items:
                raise ValueError("no URLs given")
            pairs = [kv.partition("=") for kv in labels.split(",") if kv.strip()]
            from genblaze_core.models.manifest import Manifest

            sub = build_submission(
                Manifest.from_run(run_from_urls(items)),
                dest,
                tenant=user.who.name,
                labels={k.strip(): v.strip() for k, _, v in pairs if k.strip()},
            )
            job_id, _ = service.submit(sub)
        except (IngestError, ValueError) as exc:
            msg = str(exc).splitlines()[0][:300]
            return html(render.refused(msg, "/ui", user.label, user.csrf))
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @router.get("/ui/jobs/{job_id}")
    def job_page(
        request: Request,
        job_id: JobId,
        user: TenantPage,
        state: str | None = None,
        cursor: AssetCursorParam = None,
    ) -> HTMLResponse:
        after = parse_asset_cursor(cursor)
        request.app.state.owned_version(job_id, user.who.name)
        found = store.job_document(job_id)
        if found is None:
            raise HTTPException(404, "job not found")
        doc = json.loads(found[1])
        state = state if state in ASSET_STATES else None
        if state or cursor:
            page = store.asset_page(job_id, state=AssetState(state) if state else None, after=after)
            doc["assets"], doc["next_cursor"] = page["assets"], page["next_cursor"]
        return html(render.job(JobPage.of(doc, state, user.csrf), user.label))

    @posts.post("/ui/jobs/{job_id}/retry")
    async def retry(request: Request, job_id: JobId, user: TenantPage) -> Response:
        form = await request.form()
        check_form(user, str(form.get("csrf", "")))
        await asyncio.to_thread(request.app.state.owned_version, job_id, user.who.name)
        reps = {
            str(k)[len("replace:") :]: Replacement(str(v).strip())
            for k, v in form.items()
            if str(k).startswith("replace:") and str(v).strip()
        }
        try:
            await asyncio.to_thread(service.retry, job_id, reps)
        except IngestError as exc:
            return html(render.refused(str(exc), f"/ui/jobs/{job_id}", user.label, user.csrf))
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @posts.post("/ui/jobs/{job_id}/cancel")
    def cancel(
        request: Request, job_id: JobId, user: TenantPage, csrf: Annotated[str, Form()] = ""
    ) -> Response:
        check_form(user, csrf)
        request.app.state.owned_version(job_id, user.who.name)
        service.cancel(job_id)
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @router.get("/ui/jobs/{job_id}/events")
    async def events(request: Request, job_id: JobId, user: TenantJson) -> Any:
        from sse_starlette.sse import EventSourceResponse

        await asyncio.to_thread(request.app.state.owned_version, job_id, user.who.name)
        return EventSourceResponse(job_events(hub, store, job_id, None))

    router.include_router(posts)
    return router

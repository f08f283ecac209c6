"""The status API: submit, poll, stream, cancel. Tenant-scoped, bearer-token auth.

`create_app` receives everything it needs (store, service, tokens); only
`app_from_env` reads the settings. Errors become HTTP answers in one table
(api/errors.py): a Redis outage answers 503, never 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from genblaze_s3.api.auth import tenant_for
from genblaze_s3.api.errors import install_error_handlers
from genblaze_s3.api.metrics import StoreCollector
from genblaze_s3.api.ratelimit import RateLimiter, retry_after
from genblaze_s3.api.schemas import JobAccepted, JobCreate, Problem
from genblaze_s3.ingest.errors import InvalidJobError
from genblaze_s3.ingest.models import JobState, JobView
from genblaze_s3.ingest.service import IngestService
from genblaze_s3.ingest.submission import build_submission, run_from_urls

_TERMINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}


def _manifest_from(body: JobCreate) -> tuple[Any, dict[str, str]]:
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.models.run import Run

    if (body.assets is None) == (body.run is None):
        raise InvalidJobError("give exactly one of `assets` or `run`")
    if body.assets is not None:
        if not body.assets:
            raise InvalidJobError("`assets` is empty")
        try:
            run = run_from_urls([(a.url, a.media_type, a.sha256) for a in body.assets])
        except ValidationError as exc:  # genblaze-core's Asset rules (media_type, sha256...)
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "asset"
            raise InvalidJobError(f"invalid asset {where}: {first['msg']}") from exc
        expected = {
            asset.asset_id: a.sha256
            for asset, a in zip(run.steps[0].assets, body.assets, strict=True)
            if a.sha256
        }
        return Manifest.from_run(run), expected
    try:
        run = Run.model_validate(body.run)
    except ValidationError as exc:
        raise InvalidJobError(
            f"`run` is not a valid genblaze Run: {exc.error_count()} error(s)"
        ) from exc
    return Manifest.from_run(run), {}


class DocumentCache:
    """Job documents by (job_id, version): many clients polling one job cost one read.

    Every store write bumps the job's version, so a cached document is served
    only while it is exactly current. Bounded LRU; thread-safe.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str, version: int) -> str | None:
        with self._lock:
            item = self._items.get(job_id)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(job_id)
            return item[1]

    def put(self, job_id: str, version: int, doc: str) -> None:
        with self._lock:
            self._items[job_id] = (version, doc)
            self._items.move_to_end(job_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's tenant, or 401 with a Bearer challenge, or 429 when over its rate."""
    found = tenant_for(authorization, request.app.state.tokens)
    if found is None:
        raise HTTPException(
            401,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="genblaze"'},
        )
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is not None:
        # Per token, not per tenant: one tenant's leaked or runaway token must
        # not starve its other clients. Keyed by a digest so the limiter's
        # table never holds a usable secret.
        token_key = hashlib.sha256((authorization or "").encode()).hexdigest()
        wait = limiter.acquire(token_key)
        if wait > 0:
            raise HTTPException(
                429,
                "rate limit exceeded for this token",
                headers={"Retry-After": retry_after(wait)},
            )
    return found


Tenant = Annotated[str, Depends(_tenant)]


def create_app(
    service: IngestService,
    tokens: dict[str, str],
    *,
    broker_ping: Callable[[], bool] | None = None,
    queue_depth: Callable[[], int | None] = lambda: None,
    sse_interval: float = 0.5,
    rate_limit: tuple[float, float] | None = None,
) -> FastAPI:
    store = service.store
    app = FastAPI(
        title="genblaze-s3 ingest API",
        version="0.4.0",
        description="Submit genblaze runs or asset URLs for durable ingestion into your bucket, "
        "and watch the jobs. Bearer-token auth; each job is visible only to its tenant.",
    )
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, queue_depth))

    install_error_handlers(app)
    app.state.tokens = tokens
    app.state.limiter = RateLimiter(*rate_limit) if rate_limit else None

    cache = DocumentCache()

    def owned_doc(job_id: str, who: str) -> str:
        tv = store.job_version(job_id) if len(job_id) <= 64 else None
        if tv is None or tv[0] != who:
            raise HTTPException(404, "job not found")  # the same answer for "not yours"
        doc = cache.get(job_id, tv[1])
        if doc is None:
            doc = store.get_job_document(job_id)
            if doc is None:
                raise HTTPException(404, "job not found")
            # Read the version again: cache only if no write slipped in meanwhile.
            again = store.job_version(job_id)
            if again is not None and again[1] == tv[1]:
                cache.put(job_id, tv[1], doc)
        return doc

    def owned(job_id: str, who: str) -> JobView:
        return JobView.model_validate_json(owned_doc(job_id, who))

    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem},
        404: {"model": Problem},
        503: {"model": Problem},
    }

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        responses={**errors, 422: {"model": Problem}},
    )
    def submit(
        body: JobCreate,
        who: Tenant,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JobAccepted:
        """Accept a run or a list of URLs; returns at once with the job id."""
        manifest, expected = _manifest_from(body)
        sub = build_submission(
            manifest,
            body.destination,
            tenant=who,
            manifest_lock=body.manifest_lock,
            notify_url=body.notify_url,
            expected_sha256=expected,
        )
        job_id, _ = service.submit(sub, idempotency_key=idempotency_key)
        return JobAccepted(job_id=job_id, status_url=str(request.url_for("get_job", job_id=job_id)))

    @app.get("/v1/jobs/{job_id}", response_model=JobView, responses=errors, name="get_job")
    def get_job(job_id: str, who: Tenant) -> Response:
        """The job document: state, progress, per-asset results, manifest."""
        return Response(owned_doc(job_id, who), media_type="application/json")

    @app.delete(
        "/v1/jobs/{job_id}", response_model=JobView, responses={**errors, 409: {"model": Problem}}
    )
    def cancel(job_id: str, who: Tenant) -> Response:
        """Cancel: running copies stop and abort their uploads; no manifest is written."""
        owned_doc(job_id, who)
        state = service.cancel(job_id)
        view = owned(job_id, who)
        if state not in (JobState.CANCELED,):
            return Response(
                json.dumps({"detail": f"job is {view.state.value}", "code": "not_cancelable"}),
                status_code=409,
                media_type="application/json",
            )
        return Response(view.model_dump_json(), media_type="application/json")

    @app.get("/v1/jobs/{job_id}/events", responses=errors)
    async def events(job_id: str, who: Tenant) -> Any:
        """Server-sent events: the job document each time it changes, until terminal."""
        from sse_starlette.sse import EventSourceResponse

        owned_doc(job_id, who)

        async def stream() -> AsyncIterator[dict[str, str]]:
            last = None
            while True:
                doc = await asyncio.to_thread(store.get_job_document, job_id)
                if doc is None:
                    return
                if doc != last:
                    last = doc
                    yield {"event": "job", "data": doc}
                if JobView.model_validate_json(doc).state in _TERMINAL:
                    return
                await asyncio.sleep(sse_interval)

        return EventSourceResponse(stream())

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when the store and the broker answer; 503 otherwise."""
        checks = {"store": _safe(store.ping), "broker": _safe(broker_ping) if broker_ping else True}
        ok = all(checks.values())
        return JSONResponse({"ok": ok, **checks}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False

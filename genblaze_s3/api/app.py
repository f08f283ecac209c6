"""The status API: submit, poll, stream, cancel. Tenant-scoped, bearer-token auth.

`create_app` receives everything it needs (store, service, tokens); only
`app_from_env` reads the settings. Errors become HTTP answers in one table
(api/errors.py): a Redis outage answers 503, never 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from pydantic import ValidationError

from genblaze_s3.api import openapi_doc
from genblaze_s3.api.errors import install_error_handlers
from genblaze_s3.api.events import EventHub, job_events
from genblaze_s3.api.fleet import FleetDesk
from genblaze_s3.api.guard import UNAUTHORIZED, BodyGuard, Gate, client_address
from genblaze_s3.api.metrics import StoreCollector
from genblaze_s3.api.problems import problem_response
from genblaze_s3.api.ratelimit import RateLimiter
from genblaze_s3.api.routes_fleet import fleet_router
from genblaze_s3.api.routes_jobs import add_job_routes
from genblaze_s3.api.routes_tenant import add_tenant_routes
from genblaze_s3.api.schemas import JobAccepted, JobCreate, JobId
from genblaze_s3.api.ui import add_ui_routes
from genblaze_s3.ingest.errors import InvalidJobError
from genblaze_s3.ingest.operators import OperatorRegistry
from genblaze_s3.ingest.store.fleet import FleetStore, QueueStats
from genblaze_s3.ingest.store.sessions import SessionStore
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.submit.submission import build_submission, run_from_urls
from genblaze_s3.ingest.tenants import TenantRegistry


def _manifest_from(body: JobCreate) -> tuple[Any, dict[str, str]]:
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.models.run import Run

    if (body.assets is None) == (body.run is None):
        raise InvalidJobError("give exactly one of `assets` or `run`", field="assets")
    if body.assets is not None:
        if not body.assets:
            raise InvalidJobError("`assets` is empty", field="assets")
        try:
            run = run_from_urls([(a.url, a.media_type, a.sha256) for a in body.assets])
        except ValidationError as exc:  # genblaze-core's Asset rules (media_type, sha256...)
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "asset"
            raise InvalidJobError(f"invalid asset {where}: {first['msg']}", field="assets") from exc
        expected = {
            asset.asset_id: a.sha256
            for asset, a in zip(run.steps[0].assets, body.assets, strict=True)
            if a.sha256
        }
        return Manifest.from_run(run), expected
    try:
        run = Run.model_validate(body.run)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(["run", *(str(p) for p in first["loc"])])
        raise InvalidJobError(
            f"`run` is not a valid genblaze Run: {exc.error_count()} error(s), "
            f"first {where}: {first['msg']}",
            field=where,
        ) from exc
    return Manifest.from_run(run), {}


def _tenant(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    """The caller's tenant, or 401 with a Bearer challenge, or 429 when over its rate."""
    who = getattr(request.state, "principal", None)  # BodyGuard already checked it
    if who is None:
        return str(request.app.state.gate.admit(authorization, client_address(request.scope)).name)
    if who.tenant is None:  # an operator's token: it owns no jobs
        raise HTTPException(401, UNAUTHORIZED[0], headers=UNAUTHORIZED[1])
    return str(who.name)


Tenant = Annotated[str, Depends(_tenant)]


def create_app(
    service: IngestService,
    tokens: Mapping[str, str] | None = None,
    *,
    broker_ping: Callable[[], bool] | None = None,
    queue_depth: Callable[[], int | None] = lambda: None,
    queue_stats: Callable[[], list[QueueStats]] | None = None,
    operators: OperatorRegistry | None = None,
    rate_limit: tuple[float, float] | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    metrics_token: str | None = None,
) -> FastAPI:
    """The API over `service`; callers authenticate against `service.tenants`.

    `tokens` ({token: tenant}, the 0.4 signature) replaces the service's tenant
    registry with the GENBLAZE_API_TOKENS rules: authentication and placement
    must read the same registry. `operators` open the fleet view (/v1/fleet,
    /ui/fleet; none: it answers 401/403 to all); `queue_stats` is the broker probe
    (api/broker.py) the fleet view and /metrics read queue depths and ages from.
    """
    if tokens is not None:
        service.tenants = TenantRegistry.from_api_tokens(
            ",".join(f"{tenant}:{token}" for token, tenant in tokens.items()),
            service.tenants.default_webhook_secret,
        )
    store = service.store
    app = FastAPI(
        title="genblaze-s3 ingest API",
        version="0.4.0",
        description="Submit genblaze runs or asset URLs for durable ingestion into your bucket, "
        "and watch the jobs. Bearer-token auth; each job is visible only to its tenant.",
    )
    if operators is not None:
        operators.check_disjoint(service.tenants)
    desk = FleetDesk(service, FleetStore(store.redis), queue_stats or (lambda: []))
    registry = CollectorRegistry()
    registry.register(StoreCollector(queue_depth, desk))
    # The API process itself (CPU, memory, open fds, GC), as every Prometheus client does.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)

    install_error_handlers(app)
    sessions = SessionStore(store.redis)
    gate = Gate(
        service.tenants,
        RateLimiter(*rate_limit) if rate_limit else None,
        operators=operators,
        sessions=sessions,
    )
    app.state.gate = gate
    app.add_middleware(BodyGuard, gate=gate, max_body_bytes=max_body_bytes)

    openapi_doc.install(app)  # every status below is documented there, as a Problem

    @app.post("/v1/jobs", status_code=202, response_model=JobAccepted)
    def submit(
        body: JobCreate,
        who: Tenant,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JobAccepted:
        """Accept a run or a list of URLs; returns at once with the job id."""
        manifest, expected = _manifest_from(body)
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        sub = build_submission(
            manifest,
            body.destination,
            tenant=who,
            manifest_lock=body.manifest_lock,
            notify_url=body.notify_url,
            expected_sha256=expected,
            refresh_url=body.refresh_url,
            source_ready_within=body.source_ready_within,
            labels=body.labels,
            url_field="assets.{seq}.url"
            if body.assets is not None
            else "run.steps.{step}.assets.{index}.url",
        )
        job_id, _ = service.submit(sub, idempotency_key=idempotency_key, fingerprint=fingerprint)
        return JobAccepted(job_id=job_id, status_url=str(request.url_for("get_job", job_id=job_id)))

    add_job_routes(app, service, _tenant)
    add_tenant_routes(app, service, _tenant)
    hub = EventHub(store.redis)
    app.state.event_hub = hub
    add_ui_routes(app, desk, hub, sessions)
    app.include_router(fleet_router(desk))

    @app.get("/v1/jobs/{job_id}/events")
    async def events(
        job_id: JobId,
        who: Tenant,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> Any:
        """Server-sent events: the job document (`job`), then each change (`delta`:
        the summary plus the assets that changed), until the job is terminal. Event
        ids are job versions: reconnect with `Last-Event-ID` to resume."""
        from sse_starlette.sse import EventSourceResponse

        await asyncio.to_thread(app.state.owned_version, job_id, who)
        return EventSourceResponse(job_events(hub, store, job_id, last_event_id))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when the store and the broker answer; 503 (a problem saying which) otherwise."""
        checks = {"store": _safe(store.ping), "broker": _safe(broker_ping) if broker_ping else True}
        if all(checks.values()):
            return JSONResponse({"ok": True, **checks})
        down = " and ".join(k for k, v in checks.items() if not v)
        return problem_response(
            503, f"{down} unavailable", "unhealthy", extra={"ok": False, **checks}
        )

    @app.get("/metrics")
    def metrics(
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """Prometheus text. Open unless GENBLAZE_METRICS_TOKEN is set: serve it on an
        internal network only (it shows fleet-wide counts, never a tenant or a secret)."""
        if metrics_token is not None:
            presented = (authorization or "")[7:].strip().encode()
            bearer = (authorization or "").lower().startswith("bearer ")
            if not (bearer and hmac.compare_digest(presented, metrics_token.encode())):
                raise HTTPException(401, UNAUTHORIZED[0], headers=UNAUTHORIZED[1])
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False

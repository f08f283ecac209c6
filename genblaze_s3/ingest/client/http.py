"""`IngestClient` / `AsyncIngestClient`: the HTTP API from Python, typed.

Why a client and not raw httpx: every caller (the CLI, the web page's tests, a
pipeline) needs the same things done the same way: bearer auth, one error tree
mapped once from HTTP statuses (`APIUnreachableError`, `UnauthorizedError`,
`JobNotFoundError`, `ConflictError`, `InvalidRequestError`, `ServiceUnavailableError`),
cursor pagination, and server-sent events parsed into typed `JobEvent`s.

    with IngestClient("http://127.0.0.1:8000", token) as api:
        job = api.submit(["https://cdn.example/a.mp4"], {"bucket": "media"})
        for event in api.events(job.job_id):
            print(event.job.state, event.job.progress.assets_done)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from genblaze_s3.ingest.errors import IngestError, JobNotFoundError
from genblaze_s3.ingest.models import (
    AssetPage,
    AssetState,
    AssetView,
    DestinationSpec,
    JobAccepted,
    JobList,
    JobState,
    JobSummary,
    JobView,
    LockPolicy,
    RetryAccepted,
    TenantLimits,
)
from genblaze_s3.ingest.store.fleet import FleetSnapshot

T = TypeVar("T")


class IngestAPIError(IngestError):
    """The API answered with an error (or could not be reached)."""

    code = "api_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        if code:
            self.code = code


class APIUnreachableError(IngestAPIError, ConnectionError):
    """No answer from the API: wrong URL, not running, or the network is down."""

    code = "api_unreachable"


class UnauthorizedError(IngestAPIError, PermissionError):
    """401/403: the token is missing, wrong, or not allowed."""

    code = "unauthorized"


class JobNotFoundAPIError(IngestAPIError, JobNotFoundError):
    """404: no such job for this tenant (another tenant's job answers the same)."""

    code = "job_not_found"


class ConflictError(IngestAPIError):
    """409: the job's state forbids it (cancel a finished job, retry a running one)."""

    code = "conflict"


class InvalidRequestError(IngestAPIError, ValueError):
    """422: the request was refused as invalid; the message says what to change."""

    code = "invalid_request"


class RateLimitedError(IngestAPIError):
    """429: this token is over its request rate; retry after `retry_after` seconds."""

    code = "rate_limited"


class ServiceUnavailableError(IngestAPIError):
    """503: the API runs but its store or broker does not answer; retry later."""

    code = "service_unavailable"


class NotGenblazeAPIError(IngestAPIError):
    """Something answers at the URL, but not the genblaze ingest API (another web server,
    a wrong port or path): its answers lack the API's JSON bodies."""

    code = "not_genblaze_api"


class InvalidAPIURLError(IngestAPIError, ValueError):
    """The API URL is not `http(s)://host[:port]` (e.g. `127.0.0.1:8000` lacks `http://`)."""

    code = "invalid_api_url"


def parse_api_url(url: str) -> str:
    """`url` checked once, at the boundary: `http(s)://host[:port][/path]`, no trailing
    slash. Raises InvalidAPIURLError saying what to write instead."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f"; did you mean http://{text}?" if "://" not in text and text else ""
        raise InvalidAPIURLError(
            f"API URL {text!r} must look like http://host:port or https://host{hint}"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise InvalidAPIURLError(f"API URL {text!r} has an invalid port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidAPIURLError(
            f"API URL {text!r} must carry no query, fragment or credentials "
            "(the token goes in GENBLAZE_API_TOKEN)"
        )
    return text.rstrip("/")


_BY_STATUS: dict[int, type[IngestAPIError]] = {
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: JobNotFoundAPIError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def _not_genblaze(response: httpx.Response, what: str) -> NotGenblazeAPIError:
    url = response.request.url
    return NotGenblazeAPIError(
        f"{url.scheme}://{url.netloc.decode()} is not a genblaze ingest API: {what} "
        f"for {response.request.method} {url.path}; check GENBLAZE_API_URL or --api-url",
        status=response.status_code,
    )


def error_for(response: httpx.Response) -> IngestAPIError:
    """The typed error for a non-2xx answer, its message the server's `detail`.

    Every 4xx of the API carries a JSON `{"detail": ...}` body; a 4xx without one comes
    from some other server (a static file server's `404: File not found` is not "no such
    job"), so it is a NotGenblazeAPIError. 5xx stay API errors: a proxy or our own
    unhandled error answers those in plain text too.
    """
    detail: Any = response.reason_phrase
    code = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        code = body.get("code")
    elif 400 <= response.status_code < 500:
        return _not_genblaze(response, f"it answered {response.status_code} {detail}")
    if isinstance(detail, list):  # schema errors: say where, never echo values
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" for d in detail
        )
    cls = _BY_STATUS.get(response.status_code, IngestAPIError)
    return cls(f"{response.status_code}: {detail}", status=response.status_code, code=code)


@dataclass(frozen=True)
class JobEvent:
    """One server-sent event: `kind` is `job` (a snapshot with the first page of
    assets) or `delta` (the summary plus only the assets that changed); `id` is the
    job version, to resume from with `last_event_id`."""

    id: int
    kind: str
    job: JobView


def _params(**kw: Any) -> dict[str, Any]:
    out = {}
    for k, v in kw.items():
        if v is None:
            continue
        out[k] = v.isoformat() if isinstance(v, datetime) else getattr(v, "value", v)
    return out


def _submit_body(
    assets: list[str] | list[dict[str, Any]],
    destination: DestinationSpec | dict[str, Any],
    labels: dict[str, str] | None,
    manifest_lock: LockPolicy | dict[str, Any] | None,
    notify_url: str | None,
) -> dict[str, Any]:
    dest = destination.model_dump() if isinstance(destination, DestinationSpec) else destination
    body: dict[str, Any] = {
        "assets": [a if isinstance(a, dict) else {"url": a} for a in assets],
        "destination": dest,
    }
    if labels:
        body["labels"] = labels
    if manifest_lock is not None:
        body["manifest_lock"] = (
            json.loads(manifest_lock.model_dump_json())
            if isinstance(manifest_lock, LockPolicy)
            else manifest_lock
        )
    if notify_url:
        body["notify_url"] = notify_url
    return body


def _retry_body(replacements: dict[str, str] | None) -> dict[str, Any]:
    return {"replacements": [{"asset_id": a, "url": u} for a, u in (replacements or {}).items()]}


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API request and how to read its answer, independent of sync or async I/O.

    Built once here for both clients (as backend/calls.py does for the S3 backends),
    so `IngestClient` and `AsyncIngestClient` differ only by the transport call.
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _submit_call(
    assets: list[str] | list[dict[str, Any]],
    destination: DestinationSpec | dict[str, Any],
    labels: dict[str, str] | None,
    manifest_lock: LockPolicy | dict[str, Any] | None,
    notify_url: str | None,
    idempotency_key: str | None,
) -> _Call[JobAccepted]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = _submit_body(assets, destination, labels, manifest_lock, notify_url)
    return _Call(
        "POST", "/v1/jobs", JobAccepted.model_validate_json, {"json": body, "headers": headers}
    )


def _list_call(**filters: Any) -> _Call[JobList]:
    return _Call("GET", "/v1/jobs", JobList.model_validate_json, {"params": _params(**filters)})


def _get_call(job_id: str, limit: int | None) -> _Call[JobView]:
    params = _params(limit=limit)
    return _Call("GET", f"/v1/jobs/{job_id}", JobView.model_validate_json, {"params": params})


def _assets_call(
    job_id: str, state: AssetState | str | None, cursor: str | None, limit: int | None
) -> _Call[AssetPage]:
    params = _params(state=state, cursor=cursor, limit=limit)
    return _Call(
        "GET", f"/v1/jobs/{job_id}/assets", AssetPage.model_validate_json, {"params": params}
    )


def _fleet_call(hours: int | None) -> _Call[FleetSnapshot]:
    params = _params(hours=hours)
    return _Call("GET", "/v1/fleet", FleetSnapshot.model_validate_json, {"params": params})


def _cancel_call(job_id: str) -> _Call[JobView]:
    return _Call("DELETE", f"/v1/jobs/{job_id}", JobView.model_validate_json)


def _retry_call(job_id: str, replacements: dict[str, str] | None) -> _Call[RetryAccepted]:
    body = _retry_body(replacements)
    return _Call(
        "POST", f"/v1/jobs/{job_id}/retry", RetryAccepted.model_validate_json, {"json": body}
    )


def _events_stream(job_id: str, last_event_id: int | None) -> dict[str, Any]:
    """The arguments of ``stream()`` for a job's server-sent events."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    return {
        "method": "GET",
        "url": f"/v1/jobs/{job_id}/events",
        "headers": headers,
        "timeout": None,
    }


def _unreachable(base_url: httpx.URL, exc: httpx.TransportError) -> APIUnreachableError:
    return APIUnreachableError(f"cannot reach the API at {base_url}: {type(exc).__name__}")


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_for(response)
    return response


def _parsed(call: _Call[T], response: httpx.Response) -> T:
    """The answer read as `call` expects, or NotGenblazeAPIError when it is not ours."""
    body = _checked(response).content
    try:
        return call.parse(body)
    except ValueError:  # pydantic's ValidationError included: HTML, another JSON API
        raise _not_genblaze(response, "its answer is not the API's JSON") from None


def _limits_call() -> _Call[TenantLimits]:
    return _Call("GET", "/v1/limits", TenantLimits.model_validate_json)


class _SSEParser:
    """Lines of a text/event-stream in, complete events out (the WHATWG rules we use)."""

    def __init__(self) -> None:
        self._id = self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> JobEvent | None:
        if line == "":
            if not self._data:
                return None
            event = JobEvent(
                id=int(self._id or 0),
                kind=self._event or "message",
                job=JobView.model_validate_json("\n".join(self._data)),
            )
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": "genblaze-ingest-client"}


class IngestClient:
    """Synchronous client for the ingest API (one httpx.Client, reused)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=parse_api_url(base_url),
            headers=_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        try:
            r = self._http.request(call.method, call.path, **call.kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(self._http.base_url, exc) from exc
        return _parsed(call, r)

    def submit(
        self,
        assets: list[str] | list[dict[str, Any]],
        destination: DestinationSpec | dict[str, Any],
        *,
        labels: dict[str, str] | None = None,
        manifest_lock: LockPolicy | dict[str, Any] | None = None,
        notify_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobAccepted:
        """Queue URLs (or `{"url", "media_type", "sha256"}` dicts) for ingestion."""
        return self._send(
            _submit_call(assets, destination, labels, manifest_lock, notify_url, idempotency_key)
        )

    def list(
        self,
        *,
        state: JobState | str | None = None,
        label: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobList:
        """One page of this tenant's jobs, newest first."""
        return self._send(
            _list_call(
                state=state,
                label=label,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
        )

    def iter_jobs(self, **filters: Any) -> Iterator[JobSummary]:
        """Every job matching `filters` (those of `list`), following cursors."""
        cursor = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.jobs
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, job_id: str, *, limit: int | None = None) -> JobView:
        """The job summary plus its first page of assets."""
        return self._send(_get_call(job_id, limit))

    def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        return self._send(_assets_call(job_id, state, cursor, limit))

    def iter_assets(
        self, job_id: str, *, state: AssetState | str | None = None
    ) -> Iterator[AssetView]:
        cursor = None
        while True:
            page = self.assets(job_id, state=state, cursor=cursor)
            yield from page.assets
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, job_id: str) -> JobView:
        return self._send(_cancel_call(job_id))

    def limits(self) -> TenantLimits:
        """What this token's tenant may submit (assets per job, concurrent jobs, locks)."""
        return self._send(_limits_call())

    def fleet(self, *, hours: int | None = None) -> FleetSnapshot:
        """The fleet (workers, queues, throughput, failures); needs an operator token."""
        return self._send(_fleet_call(hours))

    def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        """Re-queue a failed/canceled job's assets; `replacements` maps asset id -> new URL."""
        return self._send(_retry_call(job_id, replacements))

    def events(self, job_id: str, *, last_event_id: int | None = None) -> Iterator[JobEvent]:
        """Server-sent events until the job is terminal (resume with `last_event_id`)."""
        try:
            with self._http.stream(**_events_stream(job_id, last_event_id)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_for(r)
                parser = _SSEParser()
                for line in r.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise APIUnreachableError(f"event stream broke: {type(exc).__name__}") from exc


class AsyncIngestClient:
    """The same API for asyncio code (one httpx.AsyncClient, reused)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=parse_api_url(base_url),
            headers=_headers(token),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncIngestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        try:
            r = await self._http.request(call.method, call.path, **call.kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(self._http.base_url, exc) from exc
        return _parsed(call, r)

    async def submit(
        self,
        assets: list[str] | list[dict[str, Any]],
        destination: DestinationSpec | dict[str, Any],
        *,
        labels: dict[str, str] | None = None,
        manifest_lock: LockPolicy | dict[str, Any] | None = None,
        notify_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobAccepted:
        return await self._send(
            _submit_call(assets, destination, labels, manifest_lock, notify_url, idempotency_key)
        )

    async def list(
        self,
        *,
        state: JobState | str | None = None,
        label: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobList:
        return await self._send(
            _list_call(
                state=state,
                label=label,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            )
        )

    async def iter_jobs(self, **filters: Any) -> AsyncIterator[JobSummary]:
        """Every job matching `filters` (those of `list`), following cursors."""
        cursor = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for job in page.jobs:
                yield job
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, job_id: str, *, limit: int | None = None) -> JobView:
        return await self._send(_get_call(job_id, limit))

    async def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        return await self._send(_assets_call(job_id, state, cursor, limit))

    async def iter_assets(
        self, job_id: str, *, state: AssetState | str | None = None
    ) -> AsyncIterator[AssetView]:
        cursor = None
        while True:
            page = await self.assets(job_id, state=state, cursor=cursor)
            for asset in page.assets:
                yield asset
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: str) -> JobView:
        return await self._send(_cancel_call(job_id))

    async def limits(self) -> TenantLimits:
        return await self._send(_limits_call())

    async def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        return await self._send(_retry_call(job_id, replacements))

    async def events(
        self, job_id: str, *, last_event_id: int | None = None
    ) -> AsyncIterator[JobEvent]:
        try:
            async with self._http.stream(**_events_stream(job_id, last_event_id)) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise error_for(r)
                parser = _SSEParser()
                async for line in r.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise APIUnreachableError(f"event stream broke: {type(exc).__name__}") from exc

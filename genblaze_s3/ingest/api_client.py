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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
)


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


_BY_STATUS: dict[int, type[IngestAPIError]] = {
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: JobNotFoundAPIError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for(response: httpx.Response) -> IngestAPIError:
    """The typed error for a non-2xx answer, its message the server's `detail`."""
    detail: Any = response.reason_phrase
    code = None
    try:
        body = response.json()
        detail = body.get("detail", detail)
        code = body.get("code")
    except ValueError:
        pass
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
            base_url=base_url.rstrip("/"),
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

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise APIUnreachableError(
                f"cannot reach the API at {self._http.base_url}: {type(exc).__name__}"
            ) from exc
        if r.status_code >= 400:
            raise error_for(r)
        return r

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
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _submit_body(assets, destination, labels, manifest_lock, notify_url)
        r = self._call("POST", "/v1/jobs", json=body, headers=headers)
        return JobAccepted.model_validate_json(r.content)

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
        params = _params(
            state=state,
            label=label,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        return JobList.model_validate_json(self._call("GET", "/v1/jobs", params=params).content)

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
        r = self._call("GET", f"/v1/jobs/{job_id}", params=_params(limit=limit))
        return JobView.model_validate_json(r.content)

    def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        params = _params(state=state, cursor=cursor, limit=limit)
        r = self._call("GET", f"/v1/jobs/{job_id}/assets", params=params)
        return AssetPage.model_validate_json(r.content)

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
        return JobView.model_validate_json(self._call("DELETE", f"/v1/jobs/{job_id}").content)

    def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        """Re-queue a failed/canceled job's assets; `replacements` maps asset id -> new URL."""
        r = self._call("POST", f"/v1/jobs/{job_id}/retry", json=_retry_body(replacements))
        return RetryAccepted.model_validate_json(r.content)

    def events(self, job_id: str, *, last_event_id: int | None = None) -> Iterator[JobEvent]:
        """Server-sent events until the job is terminal (resume with `last_event_id`)."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        try:
            with self._http.stream(
                "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=None
            ) as r:
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
            base_url=base_url.rstrip("/"),
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

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise APIUnreachableError(
                f"cannot reach the API at {self._http.base_url}: {type(exc).__name__}"
            ) from exc
        if r.status_code >= 400:
            raise error_for(r)
        return r

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
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _submit_body(assets, destination, labels, manifest_lock, notify_url)
        r = await self._call("POST", "/v1/jobs", json=body, headers=headers)
        return JobAccepted.model_validate_json(r.content)

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
        params = _params(
            state=state,
            label=label,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        r = await self._call("GET", "/v1/jobs", params=params)
        return JobList.model_validate_json(r.content)

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
        r = await self._call("GET", f"/v1/jobs/{job_id}", params=_params(limit=limit))
        return JobView.model_validate_json(r.content)

    async def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        params = _params(state=state, cursor=cursor, limit=limit)
        r = await self._call("GET", f"/v1/jobs/{job_id}/assets", params=params)
        return AssetPage.model_validate_json(r.content)

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
        r = await self._call("DELETE", f"/v1/jobs/{job_id}")
        return JobView.model_validate_json(r.content)

    async def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        r = await self._call("POST", f"/v1/jobs/{job_id}/retry", json=_retry_body(replacements))
        return RetryAccepted.model_validate_json(r.content)

    async def events(
        self, job_id: str, *, last_event_id: int | None = None
    ) -> AsyncIterator[JobEvent]:
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        try:
            async with self._http.stream(
                "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=None
            ) as r:
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

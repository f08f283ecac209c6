"""`IngestClient` / `AsyncIngestClient`: the HTTP API from Python, typed.

The two clients differ only by their transport call: requests are built and answers
parsed once in `client/calls.py`; the error tree lives in `client/errors.py`.

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

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx

from genblaze_s3.ingest.client import calls
from genblaze_s3.ingest.client.calls import JobEvent
from genblaze_s3.ingest.client.errors import (
    APIUnreachableError,
    ConflictError,
    IngestAPIError,
    InvalidAPIURLError,
    InvalidRequestError,
    JobNotFoundAPIError,
    NotGenblazeAPIError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    error_for,
    parse_api_url,
)
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

# The client's public names: the error tree (client/errors.py) and the event type
# (client/calls.py) are importable from here, where users of the clients look.
__all__ = [
    "APIUnreachableError",
    "AsyncIngestClient",
    "ConflictError",
    "IngestAPIError",
    "IngestClient",
    "InvalidAPIURLError",
    "InvalidRequestError",
    "JobEvent",
    "JobNotFoundAPIError",
    "NotGenblazeAPIError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "UnauthorizedError",
    "error_for",
    "parse_api_url",
]


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
            headers=calls.headers(token),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: calls.Call[T]) -> T:
        try:
            r = self._http.request(call.method, call.path, **call.kwargs)
        except httpx.TransportError as exc:
            raise calls.unreachable(self._http.base_url, exc) from exc
        return calls.parsed(call, r)

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
            calls.submit_call(
                assets, destination, labels, manifest_lock, notify_url, idempotency_key
            )
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
            calls.list_call(
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
        return self._send(calls.get_call(job_id, limit))

    def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        return self._send(calls.assets_call(job_id, state, cursor, limit))

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
        return self._send(calls.cancel_call(job_id))

    def limits(self) -> TenantLimits:
        """What this token's tenant may submit (assets per job, concurrent jobs, locks)."""
        return self._send(calls.limits_call())

    def fleet(self, *, hours: int | None = None) -> FleetSnapshot:
        """The fleet (workers, queues, throughput, failures); needs an operator token."""
        return self._send(calls.fleet_call(hours))

    def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        """Re-queue a failed/canceled job's assets; `replacements` maps asset id -> new URL."""
        return self._send(calls.retry_call(job_id, replacements))

    def events(self, job_id: str, *, last_event_id: int | None = None) -> Iterator[JobEvent]:
        """Server-sent events until the job is terminal (resume with `last_event_id`)."""
        try:
            with self._http.stream(**calls.events_stream(job_id, last_event_id)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_for(r)
                parser = calls.SSEParser()
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
            headers=calls.headers(token),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncIngestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: calls.Call[T]) -> T:
        try:
            r = await self._http.request(call.method, call.path, **call.kwargs)
        except httpx.TransportError as exc:
            raise calls.unreachable(self._http.base_url, exc) from exc
        return calls.parsed(call, r)

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
            calls.submit_call(
                assets, destination, labels, manifest_lock, notify_url, idempotency_key
            )
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
            calls.list_call(
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
        return await self._send(calls.get_call(job_id, limit))

    async def assets(
        self,
        job_id: str,
        *,
        state: AssetState | str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AssetPage:
        return await self._send(calls.assets_call(job_id, state, cursor, limit))

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
        return await self._send(calls.cancel_call(job_id))

    async def limits(self) -> TenantLimits:
        return await self._send(calls.limits_call())

    async def retry(self, job_id: str, replacements: dict[str, str] | None = None) -> RetryAccepted:
        return await self._send(calls.retry_call(job_id, replacements))

    async def events(
        self, job_id: str, *, last_event_id: int | None = None
    ) -> AsyncIterator[JobEvent]:
        try:
            async with self._http.stream(**calls.events_stream(job_id, last_event_id)) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise error_for(r)
                parser = calls.SSEParser()
                async for line in r.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise APIUnreachableError(f"event stream broke: {type(exc).__name__}") from exc

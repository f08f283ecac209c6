"""Requests built and answers parsed once, for the sync and the async client.

Each API operation is a `Call` (method, path, how to read the answer), as
backend/calls.py does for the S3 backends, so `IngestClient` and `AsyncIngestClient`
differ only by the transport call; `SSEParser` turns a text/event-stream into typed
`JobEvent`s for both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx

from genblaze_s3.ingest.client.errors import APIUnreachableError, error_for, not_genblaze
from genblaze_s3.ingest.models import (
    AssetPage,
    AssetState,
    DestinationSpec,
    JobAccepted,
    JobList,
    JobView,
    LockPolicy,
    RetryAccepted,
    TenantLimits,
)
from genblaze_s3.ingest.store.fleet import FleetSnapshot

T = TypeVar("T")


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
class Call(Generic[T]):
    """One API request and how to read its answer, independent of sync or async I/O.

    Built once here for both clients (as backend/calls.py does for the S3 backends),
    so `IngestClient` and `AsyncIngestClient` differ only by the transport call.
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    kwargs: dict[str, Any] = field(default_factory=dict)


def submit_call(
    assets: list[str] | list[dict[str, Any]],
    destination: DestinationSpec | dict[str, Any],
    labels: dict[str, str] | None,
    manifest_lock: LockPolicy | dict[str, Any] | None,
    notify_url: str | None,
    idempotency_key: str | None,
) -> Call[JobAccepted]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = _submit_body(assets, destination, labels, manifest_lock, notify_url)
    return Call(
        "POST", "/v1/jobs", JobAccepted.model_validate_json, {"json": body, "headers": headers}
    )


def list_call(**filters: Any) -> Call[JobList]:
    return Call("GET", "/v1/jobs", JobList.model_validate_json, {"params": _params(**filters)})


def get_call(job_id: str, limit: int | None) -> Call[JobView]:
    params = _params(limit=limit)
    return Call("GET", f"/v1/jobs/{job_id}", JobView.model_validate_json, {"params": params})


def assets_call(
    job_id: str, state: AssetState | str | None, cursor: str | None, limit: int | None
) -> Call[AssetPage]:
    params = _params(state=state, cursor=cursor, limit=limit)
    return Call(
        "GET", f"/v1/jobs/{job_id}/assets", AssetPage.model_validate_json, {"params": params}
    )


def fleet_call(hours: int | None) -> Call[FleetSnapshot]:
    params = _params(hours=hours)
    return Call("GET", "/v1/fleet", FleetSnapshot.model_validate_json, {"params": params})


def cancel_call(job_id: str) -> Call[JobView]:
    return Call("DELETE", f"/v1/jobs/{job_id}", JobView.model_validate_json)


def retry_call(job_id: str, replacements: dict[str, str] | None) -> Call[RetryAccepted]:
    body = _retry_body(replacements)
    return Call(
        "POST", f"/v1/jobs/{job_id}/retry", RetryAccepted.model_validate_json, {"json": body}
    )


def events_stream(job_id: str, last_event_id: int | None) -> dict[str, Any]:
    """The arguments of ``stream()`` for a job's server-sent events."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    return {
        "method": "GET",
        "url": f"/v1/jobs/{job_id}/events",
        "headers": headers,
        "timeout": None,
    }


def unreachable(base_url: httpx.URL, exc: httpx.TransportError) -> APIUnreachableError:
    return APIUnreachableError(f"cannot reach the API at {base_url}: {type(exc).__name__}")


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_for(response)
    return response


def parsed(call: Call[T], response: httpx.Response) -> T:
    """The answer read as `call` expects, or NotGenblazeAPIError when it is not ours."""
    body = checked(response).content
    try:
        return call.parse(body)
    except ValueError:  # pydantic's ValidationError included: HTML, another JSON API
        raise not_genblaze(response, "its answer is not the API's JSON") from None


def limits_call() -> Call[TenantLimits]:
    return Call("GET", "/v1/limits", TenantLimits.model_validate_json)


class SSEParser:
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


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": "genblaze-ingest-client"}

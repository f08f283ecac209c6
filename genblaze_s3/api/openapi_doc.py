"""The OpenAPI document, made the truth: every status the API sends, with its real body.

Why a pass over FastAPI's output rather than `responses=` on each route: the error
statuses follow from what an operation is (authenticated, takes a body, names a
job), and writing them per route is how the document drifted from the server
(a 422 documented as FastAPI's `HTTPValidationError` while the server sent a
string; 400 and 413 not documented at all). Here one table decides, per
operation, which problems it can answer, and all of them are
`application/problem+json` bodies of the one `Problem` schema (api/problems.py).
The fuzz test (tests/integration/test_api_fuzz.py) runs schemathesis with all
its checks against the served document to keep this honest.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from genblaze_s3.api.problems import PROBLEM_MEDIA_TYPE, FieldError, Problem

BEARER = "bearer"
_REF = "#/components/schemas/{model}"

DESCRIPTIONS: dict[int, str] = {
    400: "the body could not be read as the declared content type (`invalid_body`)",
    401: "missing or unknown bearer token (`unauthorized`); a `WWW-Authenticate` challenge",
    403: "a valid token without the right (`forbidden`): the fleet needs an operator "
    "token, and acting on it an admin operator",
    404: "no such job for this tenant (`job_not_found`), or no such route (`not_found`)",
    409: "the request conflicts with the job's state or an earlier request",
    413: "body larger than GENBLAZE_MAX_BODY_BYTES (`body_too_large`)",
    422: "a field is invalid (`invalid_request`, `invalid_job`, `invalid_cursor`, "
    "`destination_not_allowed`); `errors` names the fields",
    429: "rate limit (`rate_limited`) or the tenant's concurrent-job limit (`too_many_jobs`); "
    "see Retry-After",
    503: "the status store or the broker is unavailable; see Retry-After",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "the Bearer challenge", "schema": {"type": "string"}}
}


class Health(BaseModel):
    """`GET /healthz`: whether the store and the broker answer."""

    ok: bool
    store: bool
    broker: bool


def error_statuses(method: str, path: str, op: dict[str, Any]) -> list[int]:
    """The problem statuses an operation can answer, from what it is."""
    if path == "/healthz":
        return [503]
    if path == "/metrics":
        return [401]  # when GENBLAZE_METRICS_TOKEN is set
    out = [401, 429, 503]  # every /v1 route: the gate, its rate limit, the store
    if op.get("parameters") or "requestBody" in op:
        out.append(422)
    if "requestBody" in op:
        out += [400, 413]
    if "{job_id}" in path:
        out.append(404)
    if path.startswith("/v1/fleet"):
        out.append(403)  # a tenant's token, or a viewer acting
    if (method, path) in {
        ("post", "/v1/fleet/actions"),  # the filtered set changed since its dry run
        ("post", "/v1/jobs"),  # Idempotency-Key reused with another body
        ("delete", "/v1/jobs/{job_id}"),  # the job already ended
        ("post", "/v1/jobs/{job_id}/retry"),  # the job is not failed or canceled
    }:
        out.append(409)
    return sorted(out)


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    if status == 401:
        response["headers"] = _WWW_AUTHENTICATE
    return response


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with the error responses, bodies and security made exact."""
    components = schema.setdefault("components", {})
    defined = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        defined.pop(unused, None)
    defined.update(_schemas(Problem, FieldError, Health))
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "description": "the tenant's API token"}
    }
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            for code in [c for c in responses if c[0] in "45"]:
                del responses[code]  # FastAPI's guesses; the table below decides
            for status in error_statuses(method, path, op):
                responses[str(status)] = _problem_response(status)
            if path.startswith("/v1/"):
                op["security"] = [{BEARER: []}]
    _document_special_bodies(schema["paths"])
    return schema


def _document_special_bodies(paths: dict[str, Any]) -> None:
    """The operations whose success is not one JSON model: events, metrics, health."""
    events = paths.get("/v1/jobs/{job_id}/events", {}).get("get")
    if events is not None:
        events["responses"]["200"] = {
            "description": "a server-sent event stream (`job`, then `delta` events)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    metrics = paths.get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    health = paths.get("/healthz", {}).get("get")
    if health is not None:
        health["responses"]["200"] = {
            "description": "the store and the broker answer",
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Health")}}},
        }


def install(app: FastAPI) -> None:
    """Serve `document(...)` of `app`'s routes as its `/openapi.json` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""`/ui`: the operator's web page, served by the API process, no build step.

Server-rendered HTML (every tenant-supplied string escaped) plus a few lines of
plain JavaScript: the job page follows its job with `EventSource` (the same
pub/sub-fed stream as `/v1/jobs/{id}/events`), the jobs list refreshes its
progress bars from a small JSON endpoint. Sign-in takes a tenant token and keeps
it in an HttpOnly, SameSite=Strict cookie scoped to /ui; forms that change
something also carry a CSRF token derived from it. Reads go through the same
bounded-cost listing functions as the JSON API.
"""

import hashlib
import hmac
import html
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Cookie, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from genblaze_s3.api.events import EventHub, job_events
from genblaze_s3.api.guard import UI_COOKIE, client_address
from genblaze_s3.api.problems import problem_response
from genblaze_s3.api.schemas import AssetCursorParam, JobCursorParam, JobId
from genblaze_s3.humanize import human_age, human_size, retry_note
from genblaze_s3.ingest.errors import IngestError
from genblaze_s3.ingest.models import TERMINAL_JOB_STATES, AssetState, DestinationSpec, JobState
from genblaze_s3.ingest.store import listing
from genblaze_s3.ingest.store.cursors import parse_asset_cursor, parse_job_cursor
from genblaze_s3.ingest.submit.retry import Replacement
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.submit.submission import build_submission, run_from_urls
from genblaze_s3.ingest.transitions import (
    REOPENABLE_JOB_STATES,
    RETRYABLE_ASSET_STATES,
    progress_percent,
)

COOKIE = UI_COOKIE
# Plain files next to this module, no build step; served from /ui/static/.
STATIC = Path(__file__).parent / "ui_static"
_ASSETS = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in {".css", ".js"}}
_TYPES = {".css": "text/css", ".js": "text/javascript"}
_LIST_JS = '<script src="/ui/static/jobs.js"></script>'
_JOB_JS = '<script src="/ui/static/job.js"></script>'
# State rules are transitions.py's; the page reads them as the document's strings.
_TERMINAL = frozenset(s.value for s in TERMINAL_JOB_STATES)
_REOPENABLE = frozenset(s.value for s in REOPENABLE_JOB_STATES)
_RETRYABLE_ASSETS = frozenset(s.value for s in RETRYABLE_ASSET_STATES)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _age(iso: str) -> str:
    return f"{human_age(datetime.fromisoformat(iso.replace('Z', '+00:00')))} ago"


def _retry_text(asset: dict[str, Any]) -> str:
    """An asset between two tries: "retrying: try 2 of 6 in 4s (code: message)"."""
    r = asset.get("retry")  # the store drops it when the asset ends
    if not r:
        return ""
    when = datetime.fromisoformat(str(r["next_try_at"]).replace("Z", "+00:00"))
    err = r["last_error"]
    return retry_note(r["attempt"], r["of"], err["code"], err.get("message", ""), when)


def percent(doc: dict[str, Any]) -> int:
    """Progress of a job document (transitions.progress_percent, as the CLI shows it)."""
    p = doc["progress"]
    return progress_percent(p["bytes_done"], p["bytes_total"], p["assets_done"], p["assets_total"])


def _page(title: str, body: str, *, tenant: str | None = None, csrf: str = "") -> HTMLResponse:
    who = (
        f'<span class="muted">tenant {_e(tenant)}</span><form method="post" action="/ui/logout">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<button class="secondary" id="logout">Sign out</button></form>'
        if tenant
        else ""
    )
    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
        f' - genblaze ingest</title><meta name="viewport" content="width=device-width">'
        "<link rel='stylesheet' href='/ui/static/ui.css'></head><body><header>"
        f"<a href='/ui'>genblaze ingest</a>{who}"
        f"</header><main>{body}</main></body></html>"
    )
    return HTMLResponse(
        doc,
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"genblaze-ui-csrf", hashlib.sha256).hexdigest()[:32]


def _state(value: str) -> str:
    return f'<span class="state {_e(value)}" data-state>{_e(value)}</span>'


def _bar(pct: int) -> str:
    return f'<div class="bar" title="{pct}%"><div data-bar style="width:{pct}%"></div></div>'


def add_ui_routes(app: FastAPI, service: IngestService, hub: EventHub) -> None:
    """Register `/ui` pages on `app` (cookie sign-in with the API's tenant tokens)."""
    store = service.store

    def signed_in(token: str | None) -> str | None:
        found = service.tenants.authenticate(f"Bearer {token}") if token else None
        return str(found.name) if found is not None else None

    def need(token: str | None) -> str:
        who = signed_in(token)
        if who is None:
            raise HTTPException(303, headers={"Location": "/ui/login"})
        return who

    def check_csrf(token: str | None, csrf: str) -> str:
        who = need(token)
        if not hmac.compare_digest(csrf, _csrf(token or "")):
            raise HTTPException(403, "stale form: reload the page")
        return who

    Token = Annotated[str | None, Cookie(alias=COOKIE)]  # noqa: N806

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """Someone opening the API in a browser lands on the operator's page."""
        return RedirectResponse("/ui", status_code=307)

    @app.get("/ui/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        body = _ASSETS.get(name)
        if body is None:
            raise HTTPException(404, "not found")
        media = _TYPES[Path(name).suffix]
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})

    @app.get("/ui/login", include_in_schema=False)
    def login_form(error: str = "") -> HTMLResponse:
        msg = f'<p class="err" id="login-error">{_e(error)}</p>' if error else ""
        body = (
            '<div class="card" style="max-width:420px"><h2>Sign in</h2>'
            "<p class='muted'>Use your tenant's API token (the one your pipelines send as "
            "<code>Authorization: Bearer ...</code>).</p>"
            f'{msg}<form method="post" action="/ui/login">'
            '<p><input type="password" name="token" id="token" placeholder="API token" '
            'required style="width:100%" autocomplete="current-password"></p>'
            '<button id="sign-in">Sign in</button></form></div>'
        )
        return _page("Sign in", body)

    @app.post("/ui/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form(max_length=512)]) -> Response:
        try:  # the API's gate: a wrong token costs this address a rate-limit token too
            app.state.gate.admit(f"Bearer {token}", client_address(request.scope))
        except HTTPException as exc:
            why = "unknown token" if exc.status_code == 401 else "too many attempts; wait"
            return RedirectResponse("/ui/login?error=" + quote(why), status_code=303)
        r = RedirectResponse("/ui", status_code=303)
        r.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/ui",
            max_age=12 * 3600,
        )
        return r

    @app.post("/ui/logout", include_in_schema=False)
    def logout(token: Token = None, csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(token, csrf)
        r = RedirectResponse("/ui/login", status_code=303)
        r.delete_cookie(COOKIE, path="/ui")
        return r

    def list_rows(who: str, state: str | None, cursor: str | None) -> dict[str, Any]:
        flt = listing.JobFilter(state=JobState(state) if state else None)
        return store.list_jobs(who, flt, after=parse_job_cursor(cursor), limit=50)

    @app.get("/ui", include_in_schema=False)
    def jobs_page(
        token: Token = None, state: str | None = None, cursor: JobCursorParam = None
    ) -> HTMLResponse:
        who = need(token)
        if state is not None and state not in {s.value for s in JobState}:
            state = None
        page = list_rows(who, state, cursor)
        rows = []
        for j in page["jobs"]:
            p = j["progress"]
            failed = j["counts"]["failed"]
            pct = percent(j)
            rows.append(
                f'<tr id="job-{_e(j["job_id"])}"><td><a href="/ui/jobs/{_e(j["job_id"])}">'
                f"<code>{_e(j['job_id'])}</code></a></td><td>{_state(j['state'])}</td>"
                f"<td>{_bar(pct)}</td><td data-pct>{pct}%</td>"
                f"<td data-assets>{p['assets_done']}/{p['assets_total']}"
                f"{f' ({failed} failed)' if failed else ''}</td>"
                f"<td data-size>{human_size(p['bytes_total'] or p['bytes_done'])}</td>"
                f"<td>{_e(_age(j['created_at']))}</td>"
                f"<td>{_e(', '.join(f'{k}={v}' for k, v in j['labels'].items()))}</td></tr>"
            )
        tabs = " ".join(
            f'<a href="/ui?state={s}">{s}</a>' if s != state else f"<b>{s}</b>"
            for s in [v.value for v in JobState]
        )
        more = (
            f'<p><a id="next-page" href="/ui?{urlencode({"cursor": page["next_cursor"], **({"state": state} if state else {})})}">older jobs</a></p>'  # noqa: E501
            if page["next_cursor"]
            else ""
        )
        submit = (
            '<details class="card" id="new-job"><summary><b>New job</b></summary>'
            f'<form method="post" action="/ui/jobs"><input type="hidden" name="csrf" '
            f'value="{_e(_csrf(token or ""))}">'
            '<p><textarea name="urls" id="urls" rows="4" style="width:100%" required '
            'placeholder="one https URL per line"></textarea></p><div class="row">'
            '<input name="bucket" id="bucket" placeholder="bucket" required>'
            '<input name="endpoint_url" id="endpoint" placeholder="S3 endpoint (optional)" '
            'size="36"><input name="labels" id="labels" placeholder="labels: k=v, k2=v2">'
            '<button id="submit-job">Submit</button></div></form></details>'
        )
        body = (
            f"{submit}<div class='card'><div class='row'><h2 style='margin:0'>Jobs</h2>"
            f"<span class='muted'><a href='/ui'>all</a> {tabs}</span></div>"
            "<table id='jobs'><thead><tr><th>job</th><th>state</th><th>progress</th><th></th>"
            "<th>assets</th><th>size</th><th>age</th><th>labels</th></tr></thead><tbody>"
            + ("".join(rows) or "<tr><td colspan=8 class='muted'>no jobs yet</td></tr>")
            + f"</tbody></table>{more}</div>{_LIST_JS}"
        )
        return _page("Jobs", body, tenant=who, csrf=_csrf(token or ""))

    @app.get("/ui/jobs.json", include_in_schema=False)
    def jobs_json(
        token: Token = None, state: str | None = None, cursor: JobCursorParam = None
    ) -> JSONResponse:
        who = signed_in(token)
        if who is None:
            return problem_response(401, "sign in", "unauthorized")
        if state is not None and state not in {s.value for s in JobState}:
            state = None
        page = list_rows(who, state, cursor)
        return JSONResponse(
            {
                "jobs": [
                    {
                        "job_id": j["job_id"],
                        "state": j["state"],
                        "percent": percent(j),
                        "assets": f"{j['progress']['assets_done']}/{j['progress']['assets_total']}"
                        + (f" ({j['counts']['failed']} failed)" if j["counts"]["failed"] else ""),
                        "size": human_size(
                            j["progress"]["bytes_total"] or j["progress"]["bytes_done"]
                        ),
                    }
                    for j in page["jobs"]
                ]
            }
        )

    @app.post("/ui/jobs", include_in_schema=False)
    def submit(
        token: Token = None,
        csrf: Annotated[str, Form()] = "",
        urls: Annotated[str, Form(max_length=200_000)] = "",
        bucket: Annotated[str, Form(max_length=63)] = "",
        endpoint_url: Annotated[str, Form(max_length=2048)] = "",
        labels: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        who = check_csrf(token, csrf)
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
                tenant=who,
                labels={k.strip(): v.strip() for k, _, v in pairs if k.strip()},
            )
            job_id, _ = service.submit(sub)
        except (IngestError, ValueError) as exc:
            msg = str(exc).splitlines()[0][:300]
            return _page(
                "Refused",
                f'<p class="err" id="error">{_e(msg)}</p><p><a href="/ui">back</a></p>',
                tenant=who,
                csrf=csrf,
            )
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @app.get("/ui/jobs/{job_id}", include_in_schema=False)
    def job_page(
        job_id: JobId,
        token: Token = None,
        state: str | None = None,
        cursor: AssetCursorParam = None,
    ) -> HTMLResponse:
        who = need(token)
        after = parse_asset_cursor(cursor)
        app.state.owned_version(job_id, who)
        found = store.job_document(job_id)
        if found is None:
            raise HTTPException(404, "job not found")
        doc = json.loads(found[1])
        if state is not None and state not in {s.value for s in AssetState}:
            state = None
        if state or cursor:
            page = store.asset_page(job_id, state=AssetState(state) if state else None, after=after)
            doc["assets"], doc["next_cursor"] = page["assets"], page["next_cursor"]
        return _page(
            f"Job {job_id}",
            _job_body(doc, state, _csrf(token or "")),
            tenant=who,
            csrf=_csrf(token or ""),
        )

    @app.post("/ui/jobs/{job_id}/retry", include_in_schema=False)
    async def retry(job_id: JobId, request: Request, token: Token = None) -> Response:
        form = await request.form()
        who = check_csrf(token, str(form.get("csrf", "")))
        app.state.owned_version(job_id, who)
        reps = {
            str(k)[len("replace:") :]: Replacement(str(v).strip())
            for k, v in form.items()
            if str(k).startswith("replace:") and str(v).strip()
        }
        try:
            service.retry(job_id, reps)
        except IngestError as exc:
            return _page(
                "Refused",
                f'<p class="err" id="error">{_e(exc)}</p>'
                f'<p><a href="/ui/jobs/{_e(job_id)}">back</a></p>',
                tenant=who,
            )
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @app.post("/ui/jobs/{job_id}/cancel", include_in_schema=False)
    def cancel(job_id: JobId, token: Token = None, csrf: Annotated[str, Form()] = "") -> Response:
        who = check_csrf(token, csrf)
        app.state.owned_version(job_id, who)
        service.cancel(job_id)
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)

    @app.get("/ui/jobs/{job_id}/events", include_in_schema=False)
    async def events(job_id: JobId, token: Token = None) -> Any:
        from sse_starlette.sse import EventSourceResponse

        who = signed_in(token)
        if who is None:
            raise HTTPException(401, "sign in")
        import asyncio

        await asyncio.to_thread(app.state.owned_version, job_id, who)
        return EventSourceResponse(job_events(hub, store, job_id, None))


def _job_body(doc: dict[str, Any], state: str | None, csrf: str) -> str:
    p = doc["progress"]
    job_id = doc["job_id"]
    pct = percent(doc)
    counts = " ".join(
        f'<a href="/ui/jobs/{_e(job_id)}?state={k}">{k} {v}</a>'
        if k != state
        else f"<b>{k} {v}</b>"
        for k, v in doc["counts"].items()
        if v
    )
    errors = ", ".join(f"{_e(c)} ×{n}" for c, n in sorted(doc["error_codes"].items()))
    retryable = doc["state"] in _REOPENABLE
    actions = ""
    hidden = f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
    if retryable:
        actions += (
            f'<form id="retry-form" method="post" action="/ui/jobs/{_e(job_id)}/retry">{hidden}'
            '<button id="retry">Retry failed assets</button></form>'
        )
    if doc["state"] in ("queued", "running"):
        actions += (
            f'<form method="post" action="/ui/jobs/{_e(job_id)}/cancel">{hidden}'
            '<button class="secondary" id="cancel">Cancel job</button></form>'
        )
    manifest = doc["manifest"]
    man = (
        f"<div id='manifest'>manifest <code>{_e(manifest['key'])}</code>"
        f"{' locked until ' + _e(manifest['locked_until']) if manifest['locked_until'] else ''}"
        "</div>"
        if manifest["key"]
        else ""
    )
    err = (
        f'<div class="err">{_e(doc["error"]["code"])}: {_e(doc["error"].get("message"))}</div>'
        if doc["error"]
        else ""
    )
    rows = []
    for a in doc["assets"]:
        e = a["error"]
        replace = (
            f'<br><input form="retry-form" name="replace:{_e(a["asset_id"])}" size="40" '
            'placeholder="fresh URL (optional)" class="replace">'
            if retryable and a["state"] in _RETRYABLE_ASSETS
            else ""
        )
        rows.append(
            f'<tr id="a-{_e(a["asset_id"])}"><td><code>{_e(a["asset_id"])}</code></td>'
            f"<td>{_state(a['state'])}</td>"
            f"<td data-bytes>{human_size(a['bytes_done'])} / {human_size(a['bytes_total'])}</td>"
            f"<td><code>{_e(a['key'] or a['source_url'])}</code></td>"
            f'<td class="err" data-err>{_e(e["code"] + ": " + e["message"]) if e else ""}'
            f"{_e(_retry_text(a)) if not e else ''}"
            f"</td><td>{replace}</td></tr>"
        )
    more = (
        f'<p><a id="next-assets" href="/ui/jobs/{_e(job_id)}?'
        f"{urlencode({'cursor': doc['next_cursor'], **({'state': state} if state else {})})}"
        '">next assets</a></p>'
        if doc["next_cursor"]
        else ""
    )
    labels = ", ".join(f"{k}={v}" for k, v in doc["labels"].items())
    return (
        f'<div class="card" id="summary" data-job="{_e(job_id)}"><div class="row">'
        f"<h2 style='margin:0'>Job <code>{_e(job_id)}</code></h2>{_state(doc['state'])}"
        f"{_bar(pct)}<b id='pct'>{pct}%</b>{actions}</div>"
        f"<p>assets <b id='assets-done'>{p['assets_done']}/{p['assets_total']}</b> · "
        f"<span id='bytes'>{human_size(p['bytes_done'])} / {human_size(p['bytes_total'])}</span> · "
        f"created {_e(_age(doc['created_at']))}{' · labels ' + _e(labels) if labels else ''}</p>"
        f"<p class='muted'><a href='/ui/jobs/{_e(job_id)}'>all</a> {counts}</p>"
        f"{'<p>errors: ' + errors + '</p>' if errors else ''}{err}{man}</div>"
        "<div class='card'><table id='assets'><thead><tr><th>asset</th><th>state</th>"
        "<th>bytes</th><th>key / source</th><th>error</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>{more}</div>"
        + ("" if doc["state"] in _TERMINAL else _JOB_JS)
    )

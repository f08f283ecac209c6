"""HTML of the tenant's /ui pages: pure functions of the view models (views.py).

Every string that came from a tenant or a store is escaped here (`e`), once; the
pages load only same-origin scripts and styles (the Content-Security-Policy in
`page` says so). No server is needed to test a page: build a view, render it.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from genblaze_s3.api.ui.views import Bar, JobPage, JobsPage

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, who: str | None = None, csrf: str = "") -> str:
    """The frame of every page; `who` (signed in) adds the sign-out form."""
    header = (
        f'<span class="muted">{e(who)}</span><form method="post" action="/ui/logout">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button class="secondary" id="logout">Sign out</button></form>'
        if who
        else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}'
        f' - genblaze ingest</title><meta name="viewport" content="width=device-width">'
        "<link rel='stylesheet' href='/ui/static/ui.css'></head><body><header>"
        f"<a href='/ui'>genblaze ingest</a>{header}"
        f"</header><main>{body}</main></body></html>"
    )


def state_badge(value: str) -> str:
    return f'<span class="state {e(value)}" data-state>{e(value)}</span>'


def bar(b: Bar) -> str:
    """Two parts: blue for stored, red for failed (a failed job's bar is red)."""
    return (
        f'<div class="bar" title="{b.ok}% stored, {b.failed}% failed">'
        f'<div data-bar style="width:{b.ok}%"></div>'
        f'<div data-bar-failed class="bad" style="width:{b.failed}%"></div></div>'
    )


def hidden_csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(csrf)}">'


def login(error: str) -> str:
    msg = f'<p class="err" id="login-error">{e(error)}</p>' if error else ""
    body = (
        '<div class="card" style="max-width:420px"><h2>Sign in</h2>'
        "<p class='muted'>Use your tenant's API token (the one your pipelines send as "
        "<code>Authorization: Bearer ...</code>), or an operator token for the fleet view.</p>"
        f'{msg}<form method="post" action="/ui/login">'
        '<p><input type="password" name="token" id="token" placeholder="API token" '
        'required style="width:100%" autocomplete="current-password"></p>'
        '<button id="sign-in">Sign in</button></form></div>'
    )
    return page("Sign in", body)


def refused(message: str, back: str, who: str, csrf: str) -> str:
    body = f'<p class="err" id="error">{e(message)}</p><p><a href="{e(back)}">back</a></p>'
    return page("Refused", body, who=who, csrf=csrf)


def jobs(view: JobsPage) -> str:
    rows = [
        f'<tr id="job-{e(r.job_id)}"><td><a href="/ui/jobs/{e(r.job_id)}">'
        f"<code>{e(r.job_id)}</code></a></td><td>{state_badge(r.state)}</td>"
        f"<td>{bar(r.bar)}</td><td data-pct>{r.percent}%</td>"
        f"<td data-assets>{e(r.assets)}</td><td data-size>{e(r.size)}</td>"
        f"<td>{e(r.age)}</td><td>{e(r.labels)}</td></tr>"
        for r in view.rows
    ]
    tabs = " ".join(
        f'<a href="/ui?state={s}">{s}</a>' if s != view.state else f"<b>{s}</b>"
        for s in view.states
    )
    query = {"cursor": view.next_cursor or "", **({"state": view.state} if view.state else {})}
    more = (
        f'<p><a id="next-page" href="/ui?{e(urlencode(query))}">older jobs</a></p>'
        if view.next_cursor
        else ""
    )
    submit = (
        '<details class="card" id="new-job"><summary><b>New job</b></summary>'
        f'<form method="post" action="/ui/jobs">{hidden_csrf(view.csrf)}'
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
        + f"</tbody></table>{more}</div>"
        '<script src="/ui/static/jobs.js"></script>'
    )
    return page("Jobs", body, who=f"tenant {view.tenant}", csrf=view.csrf)


def job(view: JobPage, who: str) -> str:
    jid = e(view.job_id)
    counts = " ".join(
        f'<a href="/ui/jobs/{jid}?state={e(k)}">{e(k)} {v}</a>'
        if k != view.filter_state
        else f"<b>{e(k)} {v}</b>"
        for k, v in view.counts
    )
    errors = ", ".join(f"{e(c)} ×{n}" for c, n in view.errors)
    actions = ""
    if view.can_retry:
        actions += (
            f'<form id="retry-form" method="post" action="/ui/jobs/{jid}/retry">'
            f'{hidden_csrf(view.csrf)}<button id="retry">Retry failed assets</button></form>'
        )
    if view.can_cancel:
        actions += (
            f'<form method="post" action="/ui/jobs/{jid}/cancel">{hidden_csrf(view.csrf)}'
            '<button class="secondary" id="cancel">Cancel job</button></form>'
        )
    man = (
        f"<div id='manifest'>manifest <code>{e(view.manifest_key)}</code>"
        f"{' locked until ' + e(view.locked_until) if view.locked_until else ''}</div>"
        if view.manifest_key
        else ""
    )
    err = f'<div class="err">{e(view.job_error)}</div>' if view.job_error else ""
    rows = []
    for a in view.assets:
        replace = (
            f'<br><input form="retry-form" name="replace:{e(a.asset_id)}" size="40" '
            'placeholder="fresh URL (optional)" class="replace">'
            if a.replaceable
            else ""
        )
        rows.append(
            f'<tr id="a-{e(a.asset_id)}"><td><code>{e(a.asset_id)}</code></td>'
            f"<td>{state_badge(a.state)}</td><td data-bytes>{e(a.bytes)}</td>"
            f"<td><code>{e(a.where)}</code></td>"
            f'<td class="err" data-err>{e(a.error)}</td><td>{replace}</td></tr>'
        )
    query = {
        "cursor": view.next_cursor or "",
        **({"state": view.filter_state} if view.filter_state else {}),
    }
    more = (
        f'<p><a id="next-assets" href="/ui/jobs/{jid}?{e(urlencode(query))}">next assets</a></p>'
        if view.next_cursor
        else ""
    )
    body = (
        f'<div class="card" id="summary" data-job="{jid}"><div class="row">'
        f"<h2 style='margin:0'>Job <code>{jid}</code></h2>{state_badge(view.state)}"
        f"{bar(view.bar)}<b id='pct'>{view.percent}%</b>{actions}</div>"
        f"<p>assets <b id='assets-done'>{e(view.assets_done)}</b> · "
        f"<span id='bytes'>{e(view.bytes)}</span> · created {e(view.created)}"
        f"{' · labels ' + e(view.labels) if view.labels else ''}</p>"
        f"<p class='muted'><a href='/ui/jobs/{jid}'>all</a> {counts}</p>"
        f"{'<p>errors: ' + errors + '</p>' if errors else ''}{err}{man}</div>"
        "<div class='card'><table id='assets'><thead><tr><th>asset</th><th>state</th>"
        "<th>bytes</th><th>key / source</th><th>error</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>{more}</div>"
        + ('<script src="/ui/static/job.js"></script>' if view.live else "")
    )
    return page(f"Job {view.job_id}", body, who=who, csrf=view.csrf)

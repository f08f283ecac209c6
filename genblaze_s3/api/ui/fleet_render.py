"""HTML of the operator's fleet page: pure functions of the FleetSnapshot and friends.

The chart is inline SVG drawn here (no script, no library): one column per
5-minute bucket, stored assets in blue and failed ones in red above them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from genblaze_s3.api.fleet import FleetActionRequest, FleetActionResult
from genblaze_s3.api.ui.render import e, hidden_csrf, page, state_badge
from genblaze_s3.humanize import human_size
from genblaze_s3.ingest.store.fleet import AuditEntry, FleetSnapshot, SeriesPoint

BUCKET_MINUTES = 5


@dataclass(frozen=True)
class FleetPage:
    """Everything the fleet page shows, fetched by the route."""

    operator: str
    can_act: bool
    csrf: str
    snap: FleetSnapshot
    audit: list[AuditEntry]
    tenants: list[str]
    request: FleetActionRequest | None = None  # the dry run just made, if any
    result: FleetActionResult | None = None
    notice: str = ""


def rate(bytes_per_second: float) -> str:
    return f"{human_size(int(bytes_per_second))}/s"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def buckets(series: list[SeriesPoint], minutes: int = BUCKET_MINUTES) -> list[SeriesPoint]:
    """Sum per-minute points into `minutes`-wide buckets (the chart's columns)."""
    out: list[SeriesPoint] = []
    for p in series:
        start = p.minute - p.minute % minutes
        if not out or out[-1].minute != start:
            out.append(SeriesPoint(minute=start))
        last = out[-1]
        out[-1] = SeriesPoint(
            minute=start,
            ok=last.ok + p.ok,
            failed=last.failed + p.failed,
            bytes=last.bytes + p.bytes,
        )
    return out


def chart(series: list[SeriesPoint], width: int = 720, height: int = 120) -> str:
    cols = buckets(series)
    top = max((c.ok + c.failed for c in cols), default=0) or 1
    w = width / max(1, len(cols))
    bars = []
    for i, c in enumerate(cols):
        x = i * w
        ok_h = height * c.ok / top
        bad_h = height * c.failed / top
        label = f"{when(c.minute * 60)}: {c.ok} stored, {c.failed} failed, {human_size(c.bytes)}"
        bars.append(
            f"<g><title>{e(label)}</title>"
            f'<rect x="{x:.1f}" y="{height - ok_h:.1f}" width="{max(w - 1, 1):.1f}" '
            f'height="{ok_h:.1f}" fill="#2f7de1"/>'
            f'<rect x="{x:.1f}" y="{height - ok_h - bad_h:.1f}" width="{max(w - 1, 1):.1f}" '
            f'height="{bad_h:.1f}" fill="#d64545"/></g>'
        )
    hours = len(series) // 60
    return (
        f'<svg id="chart" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
        'preserveAspectRatio="none" '
        f'role="img" aria-label="assets finished per {BUCKET_MINUTES} minutes, last {hours} h">'
        f'<rect width="{width}" height="{height}" fill="#f6f7f9"/>{"".join(bars)}</svg>'
        f"<p class='muted'>assets finished per {BUCKET_MINUTES} min over the last {hours} h "
        "(blue stored, red failed); peak {top}</p>".replace("{top}", str(top))
    )


def workers_rows(snap: FleetSnapshot) -> str:
    return (
        "".join(
            f'<tr data-host="{e(w.host)}"><td><code>{e(w.host)}</code></td>'
            f"<td>{state_badge('alive' if w.alive else 'dead')}</td><td>{e(w.pool)}</td>"
            f"<td>{w.concurrency}</td><td data-active>{w.active}</td>"
            f"<td>{e(', '.join(w.active_jobs[:3]))}</td><td>{w.processed}</td>"
            f"<td>{age(w.seconds_since_heartbeat)} ago</td></tr>"
            for w in snap.workers
        )
        or "<tr><td colspan=8 class='muted'>no worker has reported</td></tr>"
    )


def queue_rows(snap: FleetSnapshot) -> str:
    return "".join(
        f'<tr data-queue="{e(q.name)}"><td><code>{e(q.name)}</code></td>'
        f"<td data-depth>{'-' if q.depth is None else q.depth}</td>"
        f"<td data-oldest>{age(q.oldest_age_seconds)}</td></tr>"
        for q in snap.queues
    )


def _action_form(view: FleetPage) -> str:
    req = view.request
    tenants = "".join(
        f'<option value="{e(t)}"{" selected" if req and req.tenant == t else ""}>{e(t)}</option>'
        for t in view.tenants
    )
    action = req.action.value if req else "retry"
    code = req.error_code if req and req.error_code else ""
    label = req.label if req and req.label else ""
    opts = "".join(
        f'<option value="{a}"{" selected" if a == action else ""}>{a}</option>'
        for a in ("retry", "cancel")
    )
    form = (
        '<form method="post" action="/ui/fleet/actions" id="bulk-form" class="row">'
        f"{hidden_csrf(view.csrf)}<input type='hidden' name='dry_run' value='1'>"
        f'<select name="action" id="bulk-action">{opts}</select>'
        f'<select name="tenant" id="bulk-tenant"><option value="">all tenants</option>{tenants}'
        "</select>"
        f'<input name="error_code" id="bulk-code" placeholder="error code" value="{e(code)}">'
        f'<input name="label" id="bulk-label" placeholder="label k=v" value="{e(label)}">'
        '<button id="dry-run" class="secondary">Count (dry run)</button></form>'
    )
    result = ""
    if view.result is not None and req is not None and view.result.dry_run:
        r = view.result
        ids = ", ".join(f"<code>{e(j)}</code>" for j in r.job_ids[:20])
        more = f" and {r.matched - 20} more" if r.matched > 20 else ""
        confirm = ""
        if view.can_act and r.matched:
            keep = "".join(
                f'<input type="hidden" name="{k}" value="{e(v)}">'
                for k, v in (
                    ("action", req.action.value),
                    ("tenant", req.tenant or ""),
                    ("error_code", req.error_code or ""),
                    ("label", req.label or ""),
                    ("expected_count", r.matched),
                    ("dry_run", "0"),
                )
            )
            confirm = (
                f'<form method="post" action="/ui/fleet/actions">{hidden_csrf(view.csrf)}{keep}'
                f'<button id="confirm-action">{e(req.action.value.capitalize())} '
                f"{r.matched} jobs</button></form>"
            )
        elif not view.can_act:
            confirm = "<span class='muted'>read-only operator: no actions</span>"
        result = (
            f'<div id="dry-run-result" data-count="{r.matched}"><p><b id="match-count">'
            f"{r.matched}</b> jobs match: {ids}{more}</p>{confirm}</div>"
        )
    return form + result


def audit_rows(entries: list[AuditEntry]) -> str:
    return (
        "".join(
            f"<tr><td>{e(when(a.at))}</td><td>{e(a.operator)}</td><td data-action>{e(a.action)}"
            f"</td><td><code>{e(', '.join(f'{k}={v}' for k, v in sorted(a.detail.items())))}"
            "</code></td></tr>"
            for a in entries
        )
        or "<tr><td colspan=4 class='muted'>no operator action yet</td></tr>"
    )


def fleet(view: FleetPage) -> str:
    s = view.snap
    alive = sum(1 for w in s.workers if w.alive)
    five, hour = s.rates[0], s.rates[1]
    failures = (
        "".join(
            f"<tr><td><code>{e(code)}</code></td><td>{n}</td></tr>"
            for code, n in sorted(s.failures_by_code.items(), key=lambda kv: -kv[1])
        )
        or "<tr><td colspan=2 class='muted'>no failure</td></tr>"
    )
    notice = f'<p class="card" id="notice">{e(view.notice)}</p>' if view.notice else ""
    body = (
        f"{notice}<div class='card'><div class='row'><h2 style='margin:0'>Workers</h2>"
        f"<span><b id='workers-alive'>{alive}</b> live of {len(s.workers)}</span></div>"
        "<table id='workers'><thead><tr><th>host</th><th></th><th>pool</th><th>concurrency"
        "</th><th>active copies</th><th>jobs</th><th>deliveries done</th><th>heartbeat</th>"
        f"</tr></thead><tbody>{workers_rows(s)}</tbody></table></div>"
        "<div class='card'><h2 style='margin:0'>Queues</h2><table id='queues'><thead><tr>"
        "<th>queue</th><th>waiting</th><th>oldest message</th></tr></thead>"
        f"<tbody>{queue_rows(s)}</tbody></table></div>"
        "<div class='card' id='throughput'><h2 style='margin:0'>Throughput</h2>"
        f"<p>last 5 min: <b id='rate-assets'>{five.assets_per_second:.2f}</b> assets/s · "
        f"<b id='rate-bytes'>{e(rate(five.bytes_per_second))}</b> · failure rate "
        f"<b id='rate-failed'>{100 * five.failure_rate:.1f}%</b> &nbsp; last hour: "
        f"{hour.assets_per_second:.2f} assets/s · {e(rate(hour.bytes_per_second))} · "
        f"{100 * hour.failure_rate:.1f}% failed</p>{chart(s.series)}"
        f"<p class='muted'>since the counters began: {s.totals.jobs_submitted} jobs, "
        f"{s.totals.assets_stored} assets stored, {s.totals.assets_failed} failed, "
        f"{e(human_size(s.totals.bytes_ingested))} (units: IEC, 1 MiB = 2<sup>20</sup> B)</p>"
        "</div><div class='card'><h2 style='margin:0'>Failures by error code</h2>"
        "<p class='muted'>assets, all tenants, since the counters began</p>"
        f"<table id='failures'><tbody>{failures}</tbody></table></div>"
        "<div class='card' id='bulk'><h2 style='margin:0'>Retry or cancel jobs</h2>"
        "<p class='muted'>retry picks failed and canceled jobs, cancel queued and running "
        f"ones; count them first.</p>{_action_form(view)}</div>"
        "<div class='card'><h2 style='margin:0'>Audit log</h2><table id='audit'><thead><tr>"
        "<th>when</th><th>operator</th><th>action</th><th>detail</th></tr></thead>"
        f"<tbody>{audit_rows(view.audit)}</tbody></table></div>"
        '<script src="/ui/static/fleet.js"></script>'
    )
    role = "admin" if view.can_act else "viewer"
    return page("Fleet", body, who=f"operator {view.operator} ({role})", csrf=view.csrf)

"""`genblaze-ingest fleet` (and `top`): the operator's fleet view in a terminal.

It reads `GET /v1/fleet` with an operator token, the snapshot the /ui fleet page
and /metrics are built from, so the three show the same numbers. `--json` prints
that snapshot as one JSON document on stdout (nothing else goes there); `top` (or
`fleet --watch`) redraws it every `--interval` seconds until Ctrl-C. Sizes are IEC
(1 MiB = 2^20 bytes), as everywhere in genblaze-ingest.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from genblaze_s3.humanize import human_size

if TYPE_CHECKING:
    from rich.console import Group

    from genblaze_s3.ingest.store.fleet import FleetSnapshot
    from genblaze_s3.settings import Settings

SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    """One character per value, scaled to the largest (pure)."""
    top = max(values, default=0)
    if not top:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(8, -(-v * 8 // top))] for v in values)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def render(snap: FleetSnapshot) -> Group:
    """The snapshot as rich renderables: workers, queues, throughput, failures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    workers = Table(title="workers", box=None, header_style="bold", title_justify="left")
    for col in ("HOST", "STATE", "POOL", "CONC", "ACTIVE", "DONE", "HEARTBEAT"):
        workers.add_column(col)
    for w in snap.workers:
        workers.add_row(
            w.host,
            "[green]alive[/]" if w.alive else "[red]dead[/]",
            w.pool,
            str(w.concurrency),
            str(w.active),
            str(w.processed),
            f"{_age(w.seconds_since_heartbeat)} ago",
        )
    queues = Table(title="queues", box=None, header_style="bold", title_justify="left")
    for col in ("QUEUE", "WAITING", "OLDEST"):
        queues.add_column(col)
    for q in snap.queues:
        queues.add_row(q.name, "-" if q.depth is None else str(q.depth), _age(q.oldest_age_seconds))
    five, hour = snap.rates[0], snap.rates[1]
    minutes = [p.ok + p.failed for p in snap.series[-60:]]
    rates = Text(
        f"last 5 min: {five.assets_per_second:.2f} assets/s, "
        f"{human_size(int(five.bytes_per_second))}/s, {100 * five.failure_rate:.1f}% failed\n"
        f"last hour:  {hour.assets_per_second:.2f} assets/s, "
        f"{human_size(int(hour.bytes_per_second))}/s, {100 * hour.failure_rate:.1f}% failed\n"
        f"per minute, last hour: {sparkline(minutes)}\n"
        f"totals: {snap.totals.jobs_submitted} jobs, {snap.totals.assets_stored} stored, "
        f"{snap.totals.assets_failed} failed, {human_size(snap.totals.bytes_ingested)}"
    )
    failures = Table(title="failures by code", box=None, header_style="bold", title_justify="left")
    failures.add_column("CODE")
    failures.add_column("ASSETS", justify="right")
    for code, n in sorted(snap.failures_by_code.items(), key=lambda kv: -kv[1]):
        failures.add_row(code, str(n))
    return Group(workers, Text(""), queues, Text(""), rates, Text(""), failures)


def records(snap: FleetSnapshot) -> list[tuple[object, ...]]:
    """The snapshot as plain records for a pipe: the kind first, whole values, tab-separated
    by `Output.record` (`genblaze-ingest fleet | awk -F'\\t' '$1 == "queue"'`)."""
    out: list[tuple[object, ...]] = []
    for w in snap.workers:
        out.append(
            (
                "worker",
                w.host,
                "alive" if w.alive else "dead",
                w.pool,
                w.concurrency,
                w.active,
                w.processed,
                w.seconds_since_heartbeat,
            )
        )
    for q in snap.queues:
        out.append(("queue", q.name, q.depth, q.oldest_age_seconds))
    for r in snap.rates:
        out.append(
            ("rate", r.window_seconds, r.assets_per_second, r.bytes_per_second, r.failure_rate)
        )
    t = snap.totals
    out.append(("totals", t.jobs_submitted, t.assets_stored, t.assets_failed, t.bytes_ingested))
    for code, n in sorted(snap.failures_by_code.items()):
        out.append(("failures", code, n))
    return out


def _cmd_fleet(args: argparse.Namespace) -> int:
    from genblaze_s3.cli.common import client_for
    from genblaze_s3.cli.output import output_for

    out = output_for(args, stream=args.watch)
    with client_for(args) as api:
        if not out.rich:
            while True:  # JSON (one document, or one per line when watching) or records
                snap = api.fleet(hours=args.hours)
                if out.machine:
                    out.json(snap)
                else:
                    for rec in records(snap):
                        out.record(*rec)
                if not args.watch:
                    return 0
                time.sleep(args.interval)
        console = out.console()
        if not args.watch:
            console.print(render(api.fleet(hours=args.hours)))
            return 0
        from rich.live import Live

        with Live(render(api.fleet(hours=args.hours)), console=console, screen=False) as live:
            while True:
                time.sleep(args.interval)
                live.update(render(api.fleet(hours=args.hours)))


def add_fleet_commands(sub: Any, config: Settings) -> None:
    """`fleet` and its watching alias `top`."""
    from genblaze_s3.cli.common import api_options, command

    for name, watch in (("fleet", False), ("top", True)):
        helptext = (
            "the fleet for operators: workers, queues, throughput, failures"
            + (" (redrawn until Ctrl-C)" if watch else "")
            + "; needs an operator token"
        )
        p = command(sub, name, helptext, _cmd_fleet)
        api_options(
            p,
            config,
            json_help="the snapshot as JSON (as GET /v1/fleet); with --watch, one per line",
        )
        p.add_argument("--watch", action="store_true", default=watch, help="redraw until Ctrl-C")
        p.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
        p.add_argument(
            "--hours",
            type=int,
            default=6,
            choices=range(1, 25),
            metavar="1-24",
            help="hours of history behind the rates and the sparkline",
        )

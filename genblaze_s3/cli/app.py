"""`genblaze-ingest`: run a worker or the API; submit, list, watch, retry and cancel jobs.

This is an entry point: it reads the settings once (GENBLAZE_API_URL,
GENBLAZE_API_TOKEN, GENBLAZE_BUCKET, ...; see genblaze_s3.settings) and passes
them down as option defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from genblaze_s3.cli.common import EXIT_CODES_HELP
from genblaze_s3.cli.fleet import add_fleet_commands
from genblaze_s3.cli.jobs import add_job_commands
from genblaze_s3.cli.output import UNITS_NOTE
from genblaze_s3.cli.provenance import add_provenance_commands
from genblaze_s3.cli.submit import add_submit_command
from genblaze_s3.settings import Settings, SettingsError, load_settings


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genblaze-s3")
    except PackageNotFoundError:  # a source checkout without install
        return "unknown"


def worker_command(pool: str, concurrency: int, loglevel: str, extra: list[str]) -> list[str]:
    """The Procfile's `worker:` command, run by this interpreter (no PATH lookup).

    Why `sys.executable -m celery`: `.venv/bin/genblaze-ingest worker` must work without
    an activated venv. The options are exactly the Procfile's (gossip and mingle off:
    they cost every worker a broadcast per peer at start and are not used here; -E
    sends task events so Flower shows each copy).
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers",
        "worker",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
        "-E",
        *extra,
    ]


def _cmd_worker(args: argparse.Namespace) -> int:
    cmd = worker_command(args.pool, args.concurrency, args.loglevel, args.celery_args)
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    extra: dict[str, Any] = {}
    if args.log_format == "json":  # GENBLAZE_LOG_FORMAT: uvicorn's lines too, as JSON
        from genblaze_s3.logs import configure_logging

        configure_logging("json", args.loglevel)
        extra["log_config"] = None
    uvicorn.run(
        "genblaze_s3.api.server:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.loglevel.lower(),
        access_log=False,
        **extra,
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from genblaze_s3.local.demo import run_demo

    return run_demo(workers=args.workers)


def build_parser(config: Settings | None = None) -> argparse.ArgumentParser:
    """The CLI; option defaults come from `config` (default: the environment)."""
    config = config or load_settings()
    p = argparse.ArgumentParser(
        prog="genblaze-ingest",
        description=__doc__,
        epilog=f"{EXIT_CODES_HELP}\n{UNITS_NOTE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    w = sub.add_parser(
        "worker", help="run a Celery worker (the Procfile's worker: command)", formatter_class=fmt
    )
    w.add_argument(
        "--concurrency",
        type=int,
        default=config.worker_concurrency,
        help="pool processes (GENBLAZE_WORKER_CONCURRENCY)",
    )
    w.add_argument("--pool", default=config.worker_pool, help="Celery pool (GENBLAZE_WORKER_POOL)")
    w.add_argument("--loglevel", default="INFO", help="Celery log level")
    w.add_argument("celery_args", nargs=argparse.REMAINDER, help="passed on to celery worker")
    w.set_defaults(func=_cmd_worker)
    a = sub.add_parser("api", help="serve the HTTP API and the /ui page", formatter_class=fmt)
    a.add_argument("--host", default=config.api_host, help="listen address (GENBLAZE_API_HOST)")
    a.add_argument("--port", type=int, default=config.port, help="port (PORT)")
    a.add_argument("--loglevel", default="INFO", help="uvicorn log level")
    a.set_defaults(func=_cmd_api, log_format=config.log_format)
    add_job_commands(sub, config)
    add_submit_command(sub, config)
    add_provenance_commands(sub, config)
    add_fleet_commands(sub, config)
    d = sub.add_parser(
        "demo", help="end-to-end demo on embedded Redis + SeaweedFS", formatter_class=fmt
    )
    d.add_argument("--workers", type=int, default=2, help="worker processes to start")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_settings()
    except SettingsError as exc:
        sys.exit(f"genblaze-ingest: invalid setting: {exc}")
    args = build_parser(config).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

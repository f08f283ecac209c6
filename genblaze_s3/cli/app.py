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
from genblaze_s3.cli.output import UNITS_NOTE, add_output_options, output_for
from genblaze_s3.cli.submit import add_submit_command
from genblaze_s3.humanize import size_columns
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


def _cmd_verify(args: argparse.Namespace) -> int:
    """Check a stored manifest (hash, signature, every asset's bytes, lock): exit 0 when all hold.

    Reads with this machine's credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    or B2_KEY_ID / B2_APP_KEY) at --endpoint or AWS_ENDPOINT_URL.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.ingest.finalize.signing import SignatureError, load_public_key
    from genblaze_s3.ingest.finalize.verify import parse_s3_location, verify_manifest
    from genblaze_s3.runtime import manifest_signer

    err = Console(stderr=True)
    try:
        bucket, key = parse_s3_location(args.location)
        if args.public_key:
            public_key = load_public_key(args.public_key)
        else:  # on a worker host: check against our own key (GENBLAZE_SIGNING_KEY)
            signer = manifest_signer(args.config)
            public_key = signer.public_key if signer is not None else None
    except (ValueError, SignatureError, SettingsError) as exc:
        err.print(f"genblaze-ingest verify: {exc}")
        return 2
    key_id, secret = args.credentials
    backend = S3StorageBackend(
        bucket,
        endpoint_url=args.endpoint or None,
        region=args.region,
        public_url_base=args.public_url_base,
        access_key_id=key_id,
        secret_access_key=secret,
        preflight=False,
    )
    with Progress(
        TextColumn("re-reading assets"),
        BarColumn(),
        *size_columns(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=args.no_progress or not err.is_terminal,  # no bar in logs or pipes
    ) as bar:
        task = bar.add_task("verify", total=None)
        report = verify_manifest(
            backend,
            key,
            public_key=public_key,
            require_signature=args.require_signature,
            require_lock=args.require_lock,
            concurrency=args.concurrency,
            progress=lambda n: bar.advance(task, n),
            on_total=lambda total: bar.update(task, total=total),
        )
    out = output_for(args)
    if out.machine:
        out.json(
            {
                "location": f"s3://{bucket}/{key}",
                "ok": report.ok,
                "findings": [
                    {
                        "level": f.level.value,
                        "check": f.check,
                        "subject": f.subject,
                        "message": f.message,
                    }
                    for f in report.findings
                ],
            }
        )
    else:
        for line in report.lines():
            print(line)
        print(f"{'VERIFIED' if report.ok else 'FAILED'} s3://{bucket}/{key}")
    return 0 if report.ok else 1


def _add_verify(sub: Any, config: Settings) -> None:
    v = sub.add_parser(
        "verify",
        help="verify a stored manifest and every asset it names",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    v.add_argument("location", help="s3://bucket/key-of-manifest")
    v.add_argument(
        "--public-key",
        help="Ed25519 public key: PEM file, PEM text or base64 (default: the public half "
        "of GENBLAZE_SIGNING_KEY when set)",
    )
    v.add_argument(
        "--endpoint",
        default=config.aws_endpoint_url,
        help="S3 endpoint URL (default: AWS_ENDPOINT_URL)",
    )
    v.add_argument("--region", help="S3 region of the bucket (default: the backend's)")
    v.add_argument(
        "--public-url-base",
        help="the backend's public_url_base, when the manifest's asset URLs use it",
    )
    v.add_argument("--require-signature", action="store_true", help="fail an unsigned manifest")
    v.add_argument("--require-lock", action="store_true", help="fail an unlocked manifest")
    v.add_argument("--concurrency", type=int, default=4, help="assets re-read at once")
    v.add_argument(
        "--no-progress", action="store_true", help="no progress bar (there is none off a terminal)"
    )
    add_output_options(v, "print the report as one JSON document (location, ok, findings)")
    v.set_defaults(func=_cmd_verify, credentials=config.worker_credentials(), config=config)


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
    add_fleet_commands(sub, config)
    _add_verify(sub, config)
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

"""`genblaze-ingest`: run a worker or the API, submit URLs, watch jobs, run the demo.

This is an entry point: it reads the settings once (GENBLAZE_API_URL,
GENBLAZE_API_TOKEN, GENBLAZE_BUCKET, ...; see genblaze_s3.settings) and passes
them down as option defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from genblaze_s3.settings import Settings, SettingsError, load_settings


def _cmd_worker(args: argparse.Namespace) -> int:
    cmd = [
        "celery",
        "-A",
        "workers",
        "worker",
        "--loglevel",
        args.loglevel,
        "--pool",
        args.pool,
        "--concurrency",
        str(args.concurrency),
        *args.celery_args,
    ]
    os.execvp(cmd[0], cmd)
    return 0  # pragma: no cover


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "genblaze_s3.api.server:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.loglevel.lower(),
        access_log=False,
    )
    return 0


def _client(args: argparse.Namespace) -> Any:
    import httpx

    token = args.token
    if not token:
        sys.exit("set GENBLAZE_API_TOKEN or pass --token")
    return httpx.Client(
        base_url=args.api_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _cmd_submit(args: argparse.Namespace) -> int:
    bucket = args.bucket
    if not bucket:
        sys.exit("pass --bucket or set GENBLAZE_BUCKET")
    dest: dict[str, Any] = {"bucket": bucket, "prefix": args.prefix, "key_strategy": args.strategy}
    endpoint = args.endpoint
    if endpoint:
        dest["endpoint_url"] = endpoint
    body = {"assets": [{"url": u} for u in args.urls], "destination": dest}
    with _client(args) as c:
        r = c.post("/v1/jobs", json=body)
        if r.status_code != 202:
            print(f"refused ({r.status_code}): {r.text}", file=sys.stderr)
            return 1
        job_id = r.json()["job_id"]
        print(job_id)
        if args.wait:
            return _watch(c, job_id)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        if args.watch:
            return _watch(c, args.job_id)
        r = c.get(f"/v1/jobs/{args.job_id}")
        print(r.text)
        return 0 if r.status_code == 200 else 1


def _watch(client: Any, job_id: str) -> int:
    """Progress bars for bytes and assets until the job is terminal."""
    from genblaze_s3.ingest.models import JobView
    from genblaze_s3.terminal import print_summary, watch_progress

    def fetch() -> JobView:
        r = client.get(f"/v1/jobs/{job_id}")
        r.raise_for_status()
        return JobView.model_validate_json(r.content)

    view = watch_progress(fetch)
    print_summary(view)
    return 0 if view.state.value == "succeeded" else 1


def _cmd_verify(args: argparse.Namespace) -> int:
    """Check a stored manifest (hash, signature, every asset's bytes, lock): exit 0 when all hold.

    Reads with this machine's credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    or B2_KEY_ID / B2_APP_KEY) at --endpoint or AWS_ENDPOINT_URL.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.ingest.signing import SignatureError, load_public_key
    from genblaze_s3.verify import parse_s3_location, verify_manifest

    err = Console(stderr=True)
    try:
        bucket, key = parse_s3_location(args.location)
        public_key = load_public_key(args.public_key) if args.public_key else args.own_key
    except (ValueError, SignatureError) as exc:
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
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=args.no_progress,
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
    for line in report.lines():
        print(line)
    print(f"{'VERIFIED' if report.ok else 'FAILED'} s3://{bucket}/{key}")
    return 0 if report.ok else 1


def _add_verify(sub: Any, config: Settings) -> None:
    v = sub.add_parser("verify", help="verify a stored manifest and every asset it names")
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
    v.add_argument("--region")
    v.add_argument(
        "--public-url-base",
        help="the backend's public_url_base, when the manifest's asset URLs use it",
    )
    v.add_argument("--require-signature", action="store_true", help="fail an unsigned manifest")
    v.add_argument("--require-lock", action="store_true", help="fail an unlocked manifest")
    v.add_argument("--concurrency", type=int, default=4, help="assets re-read at once")
    v.add_argument("--no-progress", action="store_true")
    signer = config.manifest_signer()  # on a worker host: check against our own key
    v.set_defaults(
        func=_cmd_verify,
        credentials=config.worker_credentials(),
        own_key=signer.public_key if signer is not None else None,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from genblaze_s3.local.demo import run_demo

    return run_demo(workers=args.workers)


def build_parser(config: Settings | None = None) -> argparse.ArgumentParser:
    """The CLI; option defaults come from `config` (default: the environment)."""
    config = config or load_settings()
    p = argparse.ArgumentParser(prog="genblaze-ingest", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="run a Celery worker (celery -A workers worker)")
    w.add_argument("--concurrency", type=int, default=config.worker_concurrency)
    w.add_argument("--pool", default=config.worker_pool)
    w.add_argument("--loglevel", default="INFO")
    w.add_argument("celery_args", nargs=argparse.REMAINDER)
    w.set_defaults(func=_cmd_worker)
    a = sub.add_parser("api", help="serve the status API")
    a.add_argument("--host", default=config.api_host)
    a.add_argument("--port", type=int, default=config.port)
    a.add_argument("--loglevel", default="INFO")
    a.set_defaults(func=_cmd_api)
    for name, helptext in (("submit", "submit URLs for ingestion"), ("status", "show a job")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--api-url", default=config.api_url)
        s.add_argument("--token", default=config.secret("api_token"))
        if name == "submit":
            s.add_argument("urls", nargs="+")
            s.add_argument("--bucket", default=config.bucket)
            s.add_argument("--endpoint", default=config.aws_endpoint_url)
            s.add_argument("--prefix", default="genblaze")
            s.add_argument(
                "--strategy",
                default="content_addressable",
                choices=["content_addressable", "hierarchical"],
            )
            s.add_argument("--wait", action="store_true")
            s.set_defaults(func=_cmd_submit)
        else:
            s.add_argument("job_id")
            s.add_argument("--watch", action="store_true")
            s.set_defaults(func=_cmd_status)
    _add_verify(sub, config)
    d = sub.add_parser("demo", help="end-to-end demo on embedded Redis + SeaweedFS")
    d.add_argument("--workers", type=int, default=2)
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

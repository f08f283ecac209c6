"""`genblaze-ingest verify` and `genblaze-ingest keys`: check a stored run; make signing keys.

verify reads with this machine's credentials (AWS_* or B2_*) at --endpoint or
AWS_ENDPOINT_URL. Which keys it trusts: the ones given (repeatable --public-key,
--keys-file); when none is given, the configured ones (GENBLAZE_TRUSTED_KEYS_FILE and
the public half of GENBLAZE_SIGNING_KEY on a worker host). Any trusted key makes a
valid signature by one of them mandatory; --content-only checks content alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from genblaze_s3.cli.output import add_output_options, output_for
from genblaze_s3.settings import Settings, SettingsError

VERIFY_EXIT_CODES = (
    "exit codes: 0 verified (content intact, signed by a trusted key; or content intact with "
    "--content-only), 1 a check failed, 2 usage, 3 content intact but origin not proven "
    "(unsigned, or signed by a key not trusted here)"
)


def _trusted(args: argparse.Namespace) -> list[Any]:
    """The key values to trust: the given ones, else the configured ones."""
    given = [*(args.public_key or []), *(args.keys_file or [])]
    if given or args.content_only:
        return given
    from genblaze_s3.runtime import manifest_signer

    config: Settings = args.config
    configured: list[Any] = [config.trusted_keys_file] if config.trusted_keys_file else []
    signer = manifest_signer(config)  # on a worker host: our own key is trusted
    if signer is not None:
        configured.append(signer.public_key)
    return configured


def _cmd_verify(args: argparse.Namespace) -> int:
    """Check a stored manifest and everything it names; print one finding per line."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.humanize import size_columns
    from genblaze_s3.ingest.finalize.keyring import load_keyring
    from genblaze_s3.ingest.finalize.signing import SignatureError
    from genblaze_s3.ingest.finalize.verify import parse_s3_location, verify_manifest

    err = Console(stderr=True)
    try:
        bucket, key = parse_s3_location(args.location)
        if args.content_only and (args.public_key or args.keys_file):
            raise ValueError("--content-only takes no --public-key / --keys-file")
        trusted = _trusted(args)
        keyring = load_keyring([t for t in trusted if isinstance(t, str)]).with_keys(
            t for t in trusted if not isinstance(t, str)
        )
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
    out = output_for(args)
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
            trusted_keys=list(keyring.values()),
            content_only=args.content_only,
            require_signature=args.require_signature,
            require_lock=args.require_lock,
            concurrency=args.concurrency,
            progress=lambda n: bar.advance(task, n),
            on_total=lambda total: bar.update(task, total=total),
        )
    if out.machine:
        out.json({**report.to_json(), "trusted_keys": sorted(keyring)})
    else:
        for line in report.lines():
            print(line)
        print(report.summary())
    return report.exit_code


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    """Write a new private key (mode 0600, never overwritten) and its public key."""
    from genblaze_s3.ingest.finalize.keyring import generate_key

    private_path = Path(args.out)
    public_path = Path(args.public_out or f"{args.out}.pub.pem")
    generated = generate_key()
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"genblaze-ingest keys: {private_path} exists; not overwritten", file=sys.stderr)
        return 2
    with os.fdopen(fd, "wb") as fh:
        fh.write(generated.private_pem)
    public_path.write_bytes(generated.public_pem)
    _print_key(args, generated.key_id, generated.public_pem, private_path, public_path)
    return 0


def _cmd_keys_show(args: argparse.Namespace) -> int:
    """Key id and public key of a private key (GENBLAZE_SIGNING_KEY by default) or public key."""
    from genblaze_s3.ingest.finalize.keyring import public_keys_from, public_pem
    from genblaze_s3.ingest.finalize.signing import SignatureError, key_id, load_private_key

    value = args.key or args.configured_signing_key
    if not value:
        print("genblaze-ingest keys show: give a key file (or set GENBLAZE_SIGNING_KEY)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        try:
            publics = [load_private_key(value).public_key()]
        except SignatureError:
            publics = public_keys_from(value)
    except SignatureError as exc:
        print(f"genblaze-ingest keys show: {exc}", file=sys.stderr)
        return 2
    for public in publics:
        _print_key(args, key_id(public), public_pem(public), None, None)
    return 0


def _print_key(
    args: argparse.Namespace,
    kid: str,
    pem: bytes,
    private_path: Path | None,
    public_path: Path | None,
) -> None:
    out = output_for(args, stream=private_path is None)
    if out.machine:
        doc: dict[str, Any] = {"key_id": kid, "public_key_pem": pem.decode()}
        if private_path is not None:
            doc.update(private_key=str(private_path), public_key=str(public_path))
        out.json(doc)
        return
    print(f"key id: {kid}")
    if private_path is not None:
        print(f"private key: {private_path} (GENBLAZE_SIGNING_KEY on the workers; keep it secret)")
        print(f"public key: {public_path} (give it to whoever verifies)")
    print(pem.decode().rstrip())


def add_provenance_commands(sub: Any, config: Settings) -> None:
    """The `verify` and `keys` subcommands, with defaults from ``config``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    v = sub.add_parser(
        "verify",
        help="verify a stored manifest, its envelope and every asset they name",
        description=__doc__,
        epilog=VERIFY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("location", help="s3://bucket/key-of-manifest")
    v.add_argument(
        "--public-key",
        action="append",
        help="a trusted Ed25519 public key (PEM file, PEM text or base64); repeat for several",
    )
    v.add_argument(
        "--keys-file",
        action="append",
        help="a PEM file of trusted public keys (current and retired); repeatable",
    )
    v.add_argument(
        "--content-only",
        action="store_true",
        help="check content alone and exit 0 when intact, without proving who signed it",
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
    v.add_argument(
        "--require-signature",
        action="store_true",
        help="fail an unsigned manifest even without a trusted key",
    )
    v.add_argument("--require-lock", action="store_true", help="fail an unlocked manifest")
    v.add_argument("--concurrency", type=int, default=4, help="assets re-read at once")
    v.add_argument(
        "--no-progress", action="store_true", help="no progress bar (there is none off a terminal)"
    )
    add_output_options(
        v,
        "print the report as one JSON document (verdict, exit_code, content_intact, "
        "origin_proven, key_id, envelope, summary, every finding)",
    )
    v.set_defaults(func=_cmd_verify, credentials=config.worker_credentials(), config=config)
    k = sub.add_parser(
        "keys",
        help="make a signing key; show a key's id and public key",
        description="generate: a new Ed25519 key pair for GENBLAZE_SIGNING_KEY. show: the key "
        "id and public key of a key file (default: GENBLAZE_SIGNING_KEY). docs/SECURITY.md "
        "says where the private key lives and how verifiers get the public one.",
    )
    ksub = k.add_subparsers(
        dest="keys_cmd", required=True, metavar="ACTION", help="generate | show"
    )
    g = ksub.add_parser(
        "generate", help="write a new Ed25519 private key and its public key", formatter_class=fmt
    )
    g.add_argument("out", help="private key file to create (mode 0600; never overwritten)")
    g.add_argument("--public-out", help="public key file (default: OUT.pub.pem)")
    add_output_options(g, "print the key id, public key and files as one JSON document")
    g.set_defaults(func=_cmd_keys_generate)
    s = ksub.add_parser(
        "show",
        help="key id and public key of a private or public key file (default: "
        "GENBLAZE_SIGNING_KEY)",
        formatter_class=fmt,
    )
    s.add_argument("key", nargs="?", help="PEM file (private, public or several public keys)")
    add_output_options(s, "one JSON object per key (key_id, public_key_pem), one per line")
    s.set_defaults(func=_cmd_keys_show, configured_signing_key=config.secret("signing_key"))

"""verify benchmark: `genblaze-ingest verify` of a 1 GiB asset versus `s5cmd cat | sha256sum`.

Run: ``python -m bench verify`` (takes the bench lock). Starts its own SeaweedFS,
stores one 1 GiB object of random bytes and a genblaze manifest naming it, then
alternates, ``--rounds`` times each: the baseline shell pipeline
``s5cmd cat s3://b/k | sha256sum`` and ``genblaze-ingest verify s3://b/manifest``
(the CLI a user runs: process start, manifest read, hash check, the asset re-read
and hashed, lock check). Both must report the object's true SHA-256. Results:
bench/results/verify.md. Target: speed ratio (baseline time / verify time) >= 0.9.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import json_block

MiB = 1024 * 1024
GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parents[1]
S5CMD = Path(sys.executable).with_name("s5cmd")
RATIO_TARGET = 0.9


def _env(server: Any) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint_url,
    }


def _baseline(server: Any, bucket: str, key: str) -> tuple[float, str]:
    cmd = f"{S5CMD} --endpoint-url {server.endpoint_url} cat s3://{bucket}/{key} | sha256sum"
    started = time.perf_counter()
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], check=True, env=_env(server), capture_output=True
    )
    return time.perf_counter() - started, out.stdout.decode().split()[0]


def _verify(server: Any, bucket: str, manifest_key: str) -> tuple[float, str]:
    cmd = [
        sys.executable, "-m", "genblaze_s3.cli", "verify", f"s3://{bucket}/{manifest_key}",
        "--no-progress", "--content-only",  # an unsigned manifest: exit 3 without it
    ]  # fmt: skip
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=_env(server), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"verify failed:\n{out.stdout}\n{out.stderr}")
    return elapsed, out.stdout


def _store(server: Any, bucket: str, source: Path) -> tuple[str, str]:
    """Upload the object and a manifest naming it; returns (manifest key, sha256)."""
    import hashlib

    from genblaze_core.models.asset import Asset
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.models.run import Run
    from genblaze_core.models.step import Step

    from genblaze_s3 import S3StorageBackend

    h = hashlib.sha256()
    with source.open("rb") as fh:
        while chunk := fh.read(16 * MiB):
            h.update(chunk)
    digest = h.hexdigest()
    key = _asset_key(digest)
    subprocess.run(
        [
            str(S5CMD),
            "--endpoint-url",
            server.endpoint_url,
            "cp",
            str(source),
            f"s3://{bucket}/{key}",
        ],
        check=True,
        env=_env(server),
        capture_output=True,
    )
    backend = S3StorageBackend(
        bucket,
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        preflight=False,
    )
    asset = Asset(
        url=backend.get_durable_url(key),
        media_type="video/mp4",
        sha256=digest,
        size_bytes=source.stat().st_size,
    )
    run = Run(name="bench", steps=[Step(provider="bench", model="m", assets=[asset])])
    manifest = Manifest.from_run(run)
    manifest_key = f"genblaze/manifests/{run.run_id}.json"
    backend.put(
        manifest_key, manifest.to_canonical_json().encode(), content_type="application/json"
    )
    return manifest_key, digest


def _markdown(result: dict[str, Any]) -> str:
    v, b = result["verify_seconds_median"], result["baseline_seconds_median"]
    size_mb = result["bytes"] / 1e6
    met = "met" if result["ratio"] >= RATIO_TARGET else "NOT met"
    return "\n".join(
        [
            "# verify benchmark (`python -m bench verify`)",
            "",
            f"Machine: {result['machine']}, {result['cpus']} CPUs, **shared with other "
            "sessions' work while measured** (figures are ratios of runs taken side by side, "
            "alternating). Server: SeaweedFS `weed mini` on loopback, started by the "
            f"benchmark. Object: {result['bytes'] // MiB} MiB of random bytes. verify: the "
            "`genblaze-ingest verify` CLI with its defaults (8 MiB ranges, 8 in flight, "
            "pinned to the ETag), whole run including process start and the manifest checks; "
            "baseline: `s5cmd cat | sha256sum` with s5cmd's defaults. "
            f"{result['rounds']} alternating rounds; medians below.",
            "",
            "| reader | median s | MB/s | runs (s) |",
            "|---|---|---|---|",
            f"| genblaze-ingest verify | {v:.2f} | {size_mb / v:.0f} | "
            f"{', '.join(f'{s:.2f}' for s in result['verify_seconds'])} |",
            f"| s5cmd cat \\| sha256sum | {b:.2f} | {size_mb / b:.0f} | "
            f"{', '.join(f'{s:.2f}' for s in result['baseline_seconds'])} |",
            "",
            f"- Speed ratio (baseline time / verify time): **{result['ratio']:.2f}** "
            f"(target >= {RATIO_TARGET}: {met}).",
            "",
            *json_block(result),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update results/")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])

    from genblaze_s3.local.services import start_seaweedfs

    verify_s: list[float] = []
    base_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="genblaze-bench-verify-") as tmp:
        root = Path(tmp)
        source = root / "object.bin"
        with source.open("wb") as fh:
            for _ in range(args.size_mib // 16):
                fh.write(os.urandom(16 * MiB))
        server = start_seaweedfs(root / "weed")
        try:
            bucket = server.create_bucket("bench-verify")
            manifest_key, digest = _store(server, bucket, source)
            source.unlink()  # from here on, bytes come only from the server
            _verify(server, bucket, manifest_key)  # untimed warm-up for both readers
            _baseline(server, bucket, _asset_key(digest))
            for _ in range(args.rounds):
                seconds, got = _baseline(server, bucket, _asset_key(digest))
                assert got == digest, "s5cmd | sha256sum read other bytes"
                base_s.append(seconds)
                seconds, out = _verify(server, bucket, manifest_key)
                assert "OK   asset" in out and "CONTENT INTACT" in out, out
                verify_s.append(seconds)
        finally:
            server.stop()

    result = {
        "bytes": args.size_mib * MiB,
        "rounds": args.rounds,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "verify_seconds": verify_s,
        "baseline_seconds": base_s,
        "verify_seconds_median": statistics.median(verify_s),
        "baseline_seconds_median": statistics.median(base_s),
        "ratio": statistics.median(base_s) / statistics.median(verify_s),
    }
    text = _markdown(result)
    if not args.no_write:
        out = ROOT / "bench" / "results" / "verify.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(text)
    return 0


def _asset_key(digest: str) -> str:
    return f"genblaze/assets/{digest[:2]}/{digest}.bin"


if __name__ == "__main__":
    raise SystemExit(main())

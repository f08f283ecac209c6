"""finalize benchmark: a 1,000-asset run, this tree's signed finalize against the previous
release's, side by side in the same run.

Run: ``python -m bench finalize [--baseline REF]`` (takes the bench lock). Starts its
own SeaweedFS (an Object Lock bucket: every arm locks its manifest, the signed arm of
this tree its envelope too) and an embedded Valkey as the status store, stores 1,000
small content-addressed objects once, then runs three arms, each in its own process
with its tree first on the import path (bench/finalize_probe.py):

- **A, the previous release, signed**: ``finalize_job`` of ``REF`` (default
  ``PREVIOUS_RELEASE``, the last commit before issues 19-23, exported with ``git
  archive``) with an Ed25519 signer: "today's finalize" as issue 20 measures it (the
  ``ed25519:<kid>`` signature over genblaze-core's canonical hash, one locked PUT);
- **B, this tree, signed**: the v2 signature over the whole manifest, the run record,
  the in-toto Statement in a DSSE envelope and its locked PUT;
- **C, this tree, unsigned** (for reference): no ``GENBLAZE_SIGNING_KEY``.

Each timed call is one whole finalize of a fresh 1,000-asset job (read 1,000 asset
records from the store, build, hash, sign, write and lock, mark the job): the part a
user waits for between "last asset stored" and "succeeded". Per round each arm
finalizes one untimed and ``--per-round`` timed jobs, the arms' order rotating between
rounds; a round's figure is its median, the result the median over rounds. Every
manifest B signed in the last round is then checked by this tree's ``verify``
(VERIFIED, untimed). Target (issue 20): B / A < 1.05. Results: bench/results/finalize.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PREVIOUS_RELEASE, export_tree, json_block

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "finalize.md"
PROBE = Path(__file__).with_name("finalize_probe.py")
TARGET = 1.05


def _store_objects(backend: Any, n: int) -> list[tuple[str, str, int]]:
    """n content-addressed objects, once: (key, sha256, size) each."""
    from concurrent.futures import ThreadPoolExecutor

    def put(i: int) -> tuple[str, str, int]:
        data = f"bench-asset-{i}".encode() * 64
        digest = hashlib.sha256(data).hexdigest()
        key = f"genblaze/assets/{digest[:2]}/{digest[2:4]}/{digest}.png"
        backend.put(key, data, content_type="image/png")
        return key, digest, len(data)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(put, range(n)))


ARMS = {
    "previous": "A: previous release, signed (ed25519 v1, one locked PUT)",
    "signed": "B: this tree, signed (v2 signature + DSSE in-toto envelope)",
    "unsigned": "C: this tree, unsigned (no GENBLAZE_SIGNING_KEY)",
}


def _probe(tree: Path, env: dict[str, str], signing_key: str) -> dict[str, Any]:
    """One arm's round: finalize_probe.py run with ``tree`` first on the import path."""
    out = subprocess.run(
        [sys.executable, str(PROBE)],
        cwd=tree,
        env={
            **env,
            "PYTHONPATH": str(tree),
            "PYTHONSAFEPATH": "1",
            "BENCH_SIGNING_KEY": signing_key,
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"probe in {tree} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _markdown(result: dict[str, Any]) -> str:
    med = result["round_medians"]
    cpu = result["cpu_round_medians"]
    ratio, cpu_ratio = result["ratio"], result["cpu_ratio"]
    in_tree, in_tree_cpu = result["signed_vs_unsigned"], result["signed_vs_unsigned_cpu"]
    met = "met" if ratio < TARGET else "NOT met"
    lines = [
        "# finalize benchmark (`python -m bench finalize`)",
        "",
        f"Machine: {result['machine']}, {result['cpus']} CPUs (load average at start "
        f"{result['load_at_start']}). SeaweedFS `weed mini` on loopback (Object Lock bucket, "
        "GOVERNANCE one day) and an embedded Valkey as the status store, both started by the "
        f"benchmark. One timed call: `finalize_job` of a fresh {result['assets']}-asset job "
        "(every asset stored, with fetch provenance), each arm in its own process with its "
        f"tree on the import path. Baseline: `git archive {result['baseline']}` (the previous "
        f"release: main before issues 19-23). {result['rounds']} rounds, arm order rotating, "
        f"{result['per_round']} timed finalizes per arm per round (after one untimed); a "
        "round's figure is its median, the result the median over rounds.",
        "",
        "| arm | median wall s | per-round medians (s) | median CPU s |",
        "|---|---|---|---|",
    ]
    for arm, title in ARMS.items():
        lines.append(
            f"| {title} | {statistics.median(med[arm]):.3f} | "
            f"{', '.join(f'{s:.3f}' for s in med[arm])} | {statistics.median(cpu[arm]):.3f} |"
        )
    lines += [
        "",
        f"- **Signing + envelope against today's finalize, wall time: B / A = {ratio:.3f}** "
        f"(target < {TARGET}: {met}); CPU of the finalizing process (upload threads "
        f"included): B / A = {cpu_ratio:.3f}.",
        f"- What signing + the envelope cost inside this tree: B / C = {in_tree:.3f} "
        f"wall, {in_tree_cpu:.3f} CPU (the envelope is built and "
        "uploaded while the manifest uploads; the rest of this tree's finalize got cheaper "
        "than the previous release's, which pays for it).",
        f"- Manifest {result['manifest_bytes']} bytes, envelope {result['envelope_bytes']} "
        "bytes; every manifest B signed in the last round verified (`VERIFIED`).",
        "",
        *json_block(result),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--baseline", default=PREVIOUS_RELEASE, help="git ref of arm A")
    parser.add_argument("--no-write", action="store_true", help="do not update results/")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])

    import redis
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from genblaze_s3.ingest.finalize.verify import Verdict, verify_manifest
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.local.services import start_redis, start_seaweedfs

    load = os.getloadavg()[0]
    private = Ed25519PrivateKey.generate()
    key_hex = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    ).hex()
    med: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    last_signed: list[str] = []
    sizes = {"manifest": 0, "envelope": 0}
    with tempfile.TemporaryDirectory(prefix="genblaze-bench-finalize-") as tmp:
        trees = {
            "previous": export_tree(args.baseline, Path(tmp) / "previous"),
            "signed": ROOT,
            "unsigned": ROOT,
        }
        sw = start_seaweedfs(Path(tmp) / "weed")
        rds = start_redis()
        try:
            bucket = sw.create_bucket("bench-finalize", object_lock=True)
            backend = sw.backend(bucket)
            objects_file = Path(tmp) / "objects.json"
            objects_file.write_text(json.dumps(_store_objects(backend, args.assets)))
            env = {
                **os.environ,
                "BENCH_REDIS_URL": rds.url,
                "BENCH_S3_ENDPOINT": sw.endpoint_url,
                "BENCH_S3_KEY": sw.access_key,
                "BENCH_S3_SECRET": sw.secret_key,
                "BENCH_BUCKET": bucket,
                "BENCH_OBJECTS": str(objects_file),
                "BENCH_COUNT": str(args.per_round),
                "BENCH_WARM": "1",
            }
            arms = list(ARMS)
            for i in range(args.rounds):
                for arm in arms[i % 3 :] + arms[: i % 3]:
                    got = _probe(trees[arm], env, "" if arm == "unsigned" else key_hex)
                    med[arm].append(statistics.median(got["walls"]))
                    cpu[arm].append(statistics.median(got["cpus"]))
                    if arm == "signed" and i == args.rounds - 1:
                        last_signed = list(got["job_ids"])
                    print(f"round {i + 1} {arm} {med[arm][-1]:.3f} s", flush=True)
            store = StatusStore(redis.Redis.from_url(rds.url))
            for job_id in last_signed:
                view = store.get_job(job_id)
                assert view is not None and view.manifest is not None and view.manifest.key
                report = verify_manifest(
                    backend, view.manifest.key, public_key=private.public_key()
                )
                if report.verdict is not Verdict.VERIFIED:
                    raise RuntimeError("\n".join(report.lines()))
                sizes["manifest"] = len(backend.get(view.manifest.key))
                sizes["envelope"] = len(
                    backend.get(view.manifest.key.removesuffix(".json") + ".intoto.json")
                )
        finally:
            rds.stop()
            sw.stop()

    def ratio(table: dict[str, list[float]], a: str, b: str) -> float:
        return statistics.median(table[b]) / statistics.median(table[a])

    result = {
        "assets": args.assets,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "baseline": args.baseline,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_at_start": round(load, 2),
        "round_medians": med,
        "cpu_round_medians": cpu,
        "ratio": ratio(med, "previous", "signed"),
        "cpu_ratio": ratio(cpu, "previous", "signed"),
        "signed_vs_unsigned": ratio(med, "unsigned", "signed"),
        "signed_vs_unsigned_cpu": ratio(cpu, "unsigned", "signed"),
        "manifest_bytes": sizes["manifest"],
        "envelope_bytes": sizes["envelope"],
    }
    text = _markdown(result)
    if not args.no_write:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

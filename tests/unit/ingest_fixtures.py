"""Shared builders for ingest unit tests (fakeredis and real Redis)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import fakeredis
from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import Manifest
from genblaze_core.models.run import Run
from genblaze_core.models.step import Step

from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.submission import JobSubmission, build_submission
from genblaze_s3.ingest.worker.asset_copy import WorkerContext
from genblaze_s3.settings import load_settings


def make_manifest(urls: list[str], *, tenant_id: str | None = None) -> Manifest:
    step = Step(
        provider="mock", model="m", assets=[Asset(url=u, media_type="image/png") for u in urls]
    )
    return Manifest.from_run(Run(name="t", tenant_id=tenant_id, steps=[step]))


def make_submission(
    n: int = 3,
    *,
    tenant: str = "acme",
    bucket: str = "bkt",
    endpoint: str | None = "http://127.0.0.1:9000",
) -> JobSubmission:
    m = make_manifest([f"https://cdn.example/a{i}.png?X-Amz-Signature=SECRET{i}" for i in range(n)])
    return build_submission(m, DestinationSpec(bucket=bucket, endpoint_url=endpoint), tenant=tenant)


class FakeBackend(SimpleNamespace):
    """What a worker step asks of a backend when the copy itself is patched out."""

    def get_durable_url(self, key: str) -> str:
        return f"http://s3/{key}"


def worker_context(**overrides: Any) -> WorkerContext:
    """A WorkerContext on fakeredis that may write to the test endpoint only."""
    client = fakeredis.FakeRedis()
    return WorkerContext(
        redis=client,
        store=StatusStore(client),
        backend_for=lambda d: FakeBackend(bucket=d.bucket),
        policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
        ),
        **overrides,
    )

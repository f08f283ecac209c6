"""Shared builders for ingest unit tests (fakeredis and real Redis)."""

from __future__ import annotations

from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import Manifest
from genblaze_core.models.run import Run
from genblaze_core.models.step import Step

from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.submit.submission import JobSubmission, build_submission


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

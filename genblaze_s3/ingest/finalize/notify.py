"""Tell a job's submitter it is over: the tenant's secret, the sealed URL opened here.

The delivery itself (Standard Webhooks signing, SSRF pinning, retries) is
`genblaze_s3.ingest.finalize.webhooks.deliver`; this module only picks what the job's tenant
configured: its webhook secret, and its `notify_url`, which is sealed at rest
like source URLs (a callback URL may carry a token in its query).
"""

from __future__ import annotations

from typing import Any

from genblaze_s3.ingest.finalize.webhooks import deliver
from genblaze_s3.ingest.models import JobMeta
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.tenants import TenantRegistry


def notify_job(
    meta: JobMeta,
    body: str,
    *,
    tenants: TenantRegistry,
    sealer: SourceSealer,
    policy: Any,
    **deliver_kw: Any,
) -> bool:
    """POST the final job document to the job's notify_url, signed for its tenant."""
    if not meta.notify_url:
        return False
    url = sealer.unseal(meta.notify_url)
    secrets = tenants.get(meta.tenant).webhook_secrets
    return deliver(url, body.encode(), secret=list(secrets) or None, policy=policy, **deliver_kw)

"""What the caller's tenant may do: `GET /v1/limits`.

Why a route: a client holding 60,000 URLs must know how to split them before it
submits (the CLI's `submit --from-file` asks here), not learn it from a 422. The
answer is the tenant's own (tenants file), never another tenant's or a secret.
"""

# No `from __future__ import annotations`: FastAPI reads `tenant_dep` from the annotation.

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from genblaze_s3.ingest.models import TenantLimits
from genblaze_s3.ingest.submit.service import IngestService


def add_tenant_routes(app: FastAPI, service: IngestService, tenant_dep: Any) -> None:
    """Register `GET /v1/limits`; `tenant_dep` yields the caller's tenant (or 401/429)."""

    @app.get("/v1/limits", response_model=TenantLimits)
    def limits(who: Annotated[str, Depends(tenant_dep)]) -> TenantLimits:
        """The caller's limits: assets per job, unfinished jobs at once, manifest lock."""
        return service.limits(who)

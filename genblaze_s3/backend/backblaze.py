"""What ``S3StorageBackend.for_backblaze`` needs: bucket, region and key, from arguments or B2_*.

The ``B2_*`` variables are the public 0.3.x contract of ``for_backblaze`` (the
names Backblaze's own tools use); they are read by ``genblaze_s3.settings``
(``load_b2_settings``) and used only when an argument is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genblaze_s3.backend.regions import B2, B2_DEFAULT_REGION, EndpointTemplate, RegionalService


@dataclass(frozen=True, slots=True)
class B2Target:
    """A Backblaze B2 bucket to connect to, fully resolved."""

    bucket: str
    region: str
    key_id: str
    app_key: str

    @classmethod
    def resolve(
        cls,
        *,
        bucket: str | None,
        region: str | None,
        key_id: str | None,
        app_key: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> B2Target:
        """Arguments first, then ``B2_*``; ``ValueError`` naming what is missing.

        Environment: ``B2_BUCKET`` (or ``B2_BUCKET_NAME``), ``B2_REGION`` (default
        ``us-west-004``), ``B2_KEY_ID`` (or ``B2_APPLICATION_KEY_ID``),
        ``B2_APP_KEY`` (or ``B2_APPLICATION_KEY``).
        """
        # Imported here: the settings module imports the copy engine, which imports us.
        from genblaze_s3.settings import load_b2_settings

        env = load_b2_settings(environ)
        name = bucket or env.bucket
        if not name:
            raise ValueError("Backblaze B2 bucket missing: pass bucket= or set B2_BUCKET")
        key = key_id or (env.key_id.get_secret_value() if env.key_id else None)
        secret = app_key or (env.app_key.get_secret_value() if env.app_key else None)
        if not key or not secret:
            raise ValueError(
                "Backblaze B2 credentials missing: pass key_id= and app_key=, or set "
                "B2_KEY_ID and B2_APP_KEY (B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY)"
            )
        chosen = region or env.region or B2_DEFAULT_REGION
        return cls(bucket=name, region=chosen, key_id=key, app_key=secret)

    def __repr__(self) -> str:  # the application key never reaches a log
        return f"B2Target(bucket={self.bucket!r}, region={self.region!r}, key_id={self.key_id!r})"


def b2_service(
    endpoint_template: EndpointTemplate | None = None, regions: Sequence[str] | None = None
) -> RegionalService:
    """Backblaze B2, optionally re-pointed (tests aim the region logic at local servers)."""
    return RegionalService(
        B2.name,
        endpoint_template or B2.endpoint_template,
        tuple(regions) if regions is not None else B2.regions,
    )


__all__ = ["B2Target", "b2_service"]

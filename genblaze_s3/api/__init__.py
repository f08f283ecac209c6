"""HTTP status API (FastAPI). `create_app` for embedding, `app_from_env` for serving."""

from genblaze_s3.api.app import create_app
from genblaze_s3.api.server import app_from_env

__all__ = ["app_from_env", "create_app"]

"""How the sync backend sends an upload: one PutObject, a file by path, or a stream in parts.

s3transfer buffers every part of a file *object* in memory (up to one part per
worker plus one), but streams parts of a file *path* straight from disk, so an
opened regular file is uploaded by its path: a 1 GiB upload's peak RSS stays
near the interpreter's own.
"""

from __future__ import annotations

import io
import os

from genblaze_s3.backend.calls import PutRequest, UploadData, single_put_body
from genblaze_s3.backend.connection import BucketConnection


def regular_file_path(data: object) -> str | None:
    """Path of ``data`` when it is a binary file on disk opened at its start, else ``None``."""
    if not isinstance(data, io.BufferedReader | io.FileIO):
        return None
    name = getattr(data, "name", None)
    try:
        if not isinstance(name, str) or "r" not in data.mode or data.tell() != 0:
            return None
        return name if os.path.isfile(name) else None
    except (OSError, ValueError):
        return None


def upload(connection: BucketConnection, request: PutRequest, data: UploadData) -> None:
    """Send ``data`` as ``request`` says; multipart above the threshold. Errors: the caller maps.

    One PutObject or parts: ``calls.single_put_body`` decides, as for the async backend.
    """
    client, bucket = connection.client, connection.bucket
    key, args, reporter = request.key, request.args, request.reporter
    body = single_put_body(data, args, connection.config.multipart_threshold)
    path = regular_file_path(data) if body is None else None
    if body is not None:
        client.put_object(Bucket=bucket, Key=key, Body=body, **args)
    elif path is not None:
        client.upload_file(
            path, bucket, key, ExtraArgs=args, Config=connection.transfer, Callback=reporter
        )
        # Leave the file consumed, as upload_fileobj would.
        data.seek(0, io.SEEK_END)  # type: ignore[union-attr]
    else:
        body = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
        client.upload_fileobj(
            body, bucket, key, ExtraArgs=args, Config=connection.transfer, Callback=reporter
        )


__all__ = ["regular_file_path", "upload"]

"""The lean S3 requests: a small PutObject and a HeadObject without botocore's pipeline.

`operations` (what is sent, and the answers parsed as boto3 would), `signing` (SigV4
over a payload whose SHA-256 is known) and `wire` (keep-alive connections to the
endpoint). Why each exists, with its measurement, is in its docstring.
"""

from genblaze_s3.backend.lean.operations import (
    LeanS3,
    head_object,
    head_object_or_none,
    lean_s3_for,
    plain_key,
    put_object,
)

__all__ = [
    "LeanS3",
    "head_object",
    "head_object_or_none",
    "lean_s3_for",
    "plain_key",
    "put_object",
]

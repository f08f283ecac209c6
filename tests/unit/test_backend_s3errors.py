"""backend/s3errors: the one reader of S3 error codes, used by the backends and the copy engine."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from genblaze_s3.backend import s3errors
from genblaze_s3.transfer.errors import SourceUnavailable, is_retryable_storage_error


def client_error(code: str | None, status: int | None, **headers: str) -> ClientError:
    response: dict[str, Any] = {"ResponseMetadata": {"HTTPHeaders": headers}}
    if code is not None:
        response["Error"] = {"Code": code}
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "Op")


def test_code_falls_back_to_the_status_and_is_none_without_an_answer() -> None:
    assert s3errors.error_code(client_error("NoSuchKey", 404)) == "NoSuchKey"
    assert s3errors.error_code(client_error(None, 503)) == "503"
    assert s3errors.error_code(EndpointConnectionError(endpoint_url="http://x")) is None
    assert s3errors.http_status(client_error("SlowDown", 503)) == 503
    assert s3errors.http_status(ValueError("no answer")) is None


def test_headers_of_an_answer() -> None:
    moved = client_error("301", 301, **{"x-amz-bucket-region": "eu-central-003"})
    assert s3errors.response_headers(moved)["x-amz-bucket-region"] == "eu-central-003"
    assert s3errors.response_headers(OSError()) == {}


@pytest.mark.parametrize(
    ("exc", "not_found", "denied"),
    [
        (client_error("NoSuchKey", 404), True, False),
        (client_error("404", 404), True, False),
        (client_error("NotFound", None), True, False),
        (client_error("AccessDenied", 403), False, True),
        (client_error("Forbidden", None), False, True),
        (client_error("InvalidRequest", 400), False, False),
        (EndpointConnectionError(endpoint_url="http://x"), False, False),
    ],
)
def test_absent_means_not_found_or_denied(
    exc: BaseException, not_found: bool, denied: bool
) -> None:
    assert s3errors.is_not_found(exc) is not_found
    assert s3errors.is_access_denied(exc) is denied
    assert s3errors.is_absent(exc) is (not_found or denied)


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("RequestTimeout", 400), True),
        (client_error(None, 502), True),
        (client_error("NotImplemented", 501), False),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchUpload", 404), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (TimeoutError(), True),
        (ValueError("a bug"), False),
    ],
)
def test_retryable_is_one_rule_for_backend_and_copy_engine(
    exc: BaseException, retryable: bool
) -> None:
    assert s3errors.is_retryable(exc) is retryable
    assert is_retryable_storage_error(exc) is retryable


def test_copy_engine_errors_keep_their_own_flag() -> None:
    assert is_retryable_storage_error(SourceUnavailable("503")) is True

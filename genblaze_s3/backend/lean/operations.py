"""PutObject (small bodies) and HeadObject signed and sent without botocore's pipeline.

Why (measured, ``python -m bench.bench_small_put``): a 64 KiB ``client.put_object``
spends most of its CPU in botocore's request pipeline, not on the wire: parameter
validation and serialization, a dozen event hooks, the endpoint ruleset (evaluated
afresh for every key), the user-agent builder, the retry handler, response parsing.
For a worker that stores thousands of thumbnails that is the largest share of its
CPU per asset (bench/results/cost.md), and a run's manifest paid it three times
(HEAD, PUT with its Object Lock, HEAD). This sends the same requests with the parts
of botocore that matter and nothing else:

* S3 SigV4 with the client's (refreshable) credentials, header for header as
  botocore's signer signs (`signing`); a PUT's payload is signed with the SHA-256 the
  copy already computed (no second pass);
* the client's HTTP settings: its timeouts, TLS verification and CA bundle, socket
  options, on kept-alive connections of this path's own (`wire`); an endpoint behind
  a proxy or with a client certificate is sent through the client's session instead;
* the client's ``before-send`` event, so anything that intercepts botocore's requests
  (moto in tests, a recorder) sees these too;
* botocore's REST-XML parser, output shapes and exception classes: an answer parses
  to the dict ``head_object`` returns, a refusal raises the same ``ClientError``
  (code, status, message) the boto3 call would.

Only plain requests take this path (`LeanS3.accepts`, `plain_key`): path-style
addressing, SigV4, a PUT body under `EXPECT_MIN_BODY` (so no ``Expect: 100-continue``
is owed) with only the parameters listed in `_HEADERS`, a key that no URL normalizer
can rewrite. Anything else goes through boto3, and so does every request of a client
whose bucket answered from another region (a redirect botocore follows and this path
does not). Retries are the caller's (`call_with_retries`), as for every other request
of the copy engine.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import botocore
from botocore.auth import _host_from_url
from botocore.awsrequest import AWSPreparedRequest, HeadersDict
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from genblaze_s3.backend import s3errors
from genblaze_s3.backend.client import EXPECT_MIN_BODY
from genblaze_s3.backend.lean.signing import KnownPayloadSigner
from genblaze_s3.backend.lean.wire import Wire
from genblaze_s3.backoff import S3_CALL, backoff_delay

# PutObject parameters this path sends, and their headers (botocore's model names them
# the same way; `test_lean_requests.py` checks every one against the service model).
_HEADERS = {
    "CacheControl": "Cache-Control",
    "ContentType": "Content-Type",
    "IfNoneMatch": "If-None-Match",
    "ChecksumAlgorithm": "x-amz-sdk-checksum-algorithm",
    "ChecksumSHA256": "x-amz-checksum-sha256",
    # A run manifest's lock rides its PUT (through botocore's pipeline that PUT was 40%
    # of finalize's CPU: py-spy of the workers during 60 runs).
    "ObjectLockMode": "x-amz-object-lock-mode",
    "ObjectLockRetainUntilDate": "x-amz-object-lock-retain-until-date",
    "ObjectLockLegalHoldStatus": "x-amz-object-lock-legal-hold",
}
# botocore's own header spelling of a value (the lock's date: whole seconds, iso8601, as
# the model says), from the member's shape: sent as boto3 sends it.
_HEADER_VALUES = create_serializer("rest-xml", include_validation=False)
_REQUIRED = frozenset({"Bucket", "Key", "Body"})
# Keys sent as they are: no dot segments, no empty segments, nothing a URL normalizer
# (urllib3's, a proxy's) could rewrite between the signature and the server.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-!*'()=+,;:@$&~]+(?:\.[A-Za-z0-9_\-!*'()=+,;:@$&~]+)*")


def plain_key(key: str) -> bool:
    """Whether ``key`` is sent as it is (see `_PLAIN_KEY`)."""
    return all(_PLAIN_KEY.fullmatch(part) for part in key.split("/"))


# Refusals that mean "signed for the wrong region" (botocore's S3RegionRedirector follows
# them); with a 301/307 they send the request back through boto3 (`LeanS3._moved`).
_REGION_CODES = frozenset(
    {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}
)
# SigV4's payload hash of an empty body (a HEAD).
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class LeanS3:
    """The lean PutObject and HeadObject of one boto3 client (module docstring); thread-safe."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._endpoint = str(client.meta.endpoint_url).rstrip("/")
        self._region = client.meta.region_name or "us-east-1"
        self._session = client._endpoint.http_session  # the client's pool, TLS and proxies
        self._wire = Wire.for_session(self._endpoint, self._session)
        self._host = _host_from_url(self._endpoint)  # signed and sent as it is
        self._base_path = urlsplit(self._endpoint).path.rstrip("/")
        self._signer = KnownPayloadSigner(client._request_signer._credentials, self._region)
        self._events = client.meta.events
        self._models = {
            op: client.meta.service_model.operation_model(op) for op in ("PutObject", "HeadObject")
        }
        self._user_agent = f"Botocore/{botocore.__version__} {_user_agent_extra(client)}".strip()
        self._parser = threading.local()
        self._redirected = False  # see `_moved`

    @staticmethod
    def eligible(client: Any) -> bool:
        """Whether this client's requests can be built here (else: put_object)."""
        config = client.meta.config
        s3 = getattr(config, "s3", None) or {}
        return (
            s3.get("addressing_style") == "path"
            and config.signature_version == "s3v4"
            and getattr(client._request_signer, "_credentials", None) is not None
            and getattr(client.meta, "endpoint_url", None) is not None
        )

    @staticmethod
    def accepts(params: dict[str, Any]) -> bool:
        """Whether one PutObject's parameters fit this path."""
        body = params.get("Body")
        return (
            _REQUIRED <= params.keys() <= _REQUIRED | _HEADERS.keys()
            and isinstance(body, bytes | bytearray)
            and len(body) < EXPECT_MIN_BODY
            and plain_key(str(params["Key"]))
            and "/" not in str(params["Bucket"])
        )

    def put(self, params: dict[str, Any], *, sha256_hex: str) -> dict[str, Any]:
        """Send one PutObject; the result is shaped like ``put_object``'s (ETag, VersionId)."""
        if self._redirected:
            return dict(self._client.put_object(**params))
        body = bytes(params["Body"])
        headers = {"User-Agent": self._user_agent, "Content-Length": str(len(body))}
        members = self._models["PutObject"].input_shape.members
        for name, header in _HEADERS.items():
            if (value := params.get(name)) is not None:
                headers[header] = str(_HEADER_VALUES._convert_header_value(members[name], value))
        response = self._send(
            "PutObject", "PUT", params["Bucket"], params["Key"], headers, body, sha256_hex
        )
        if 200 <= response.status_code < 300:
            answer: dict[str, Any] = {"ETag": response.headers.get("ETag")}
            if version := response.headers.get("x-amz-version-id"):
                answer["VersionId"] = version
            return answer
        self._raise_unless_moved("PutObject", response)
        return dict(self._client.put_object(**params))

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        """One HeadObject of a `plain_key`: the dict ``head_object`` returns (parsed by
        botocore's parser: ContentLength, ETag, ObjectLockRetainUntilDate, ...)."""
        found = self._head(bucket, key, missing_ok=False)
        assert found is not None
        return found

    def head_or_none(self, bucket: str, key: str) -> dict[str, Any] | None:
        """`head`, or None for a 404: no ClientError is built, raised and mapped for the
        answer an existence check expects (a manifest's once per run, a small CAS write's
        on stores that HEAD first)."""
        return self._head(bucket, key, missing_ok=True)

    def _head(self, bucket: str, key: str, *, missing_ok: bool) -> dict[str, Any] | None:
        if self._redirected:
            return _boto3_head(self._client, bucket, key, missing_ok=missing_ok)
        headers = {"User-Agent": self._user_agent}
        response = self._send("HeadObject", "HEAD", bucket, key, headers, None, _EMPTY_SHA256)
        if 200 <= response.status_code < 300:
            return self._parse("HeadObject", response)
        if missing_ok and response.status_code == 404:
            return None  # a HEAD's 404 has no body: nothing else to tell
        self._raise_unless_moved("HeadObject", response)
        return _boto3_head(self._client, bucket, key, missing_ok=missing_ok)

    def _raise_unless_moved(self, op: str, response: Any) -> None:
        """Raise the refusal as boto3 would, unless the bucket answered from elsewhere
        (then return: the caller sends the request through boto3, which follows it).

        No frame keeps the error in a local: frame -> error -> traceback -> frame is a
        cycle that holds every caller's frame, a copy's part buffer with them, until the
        collector's next full pass; a HEAD's 404 is the common case (measured: 26 live
        4 MiB buffers for 8 parallel copies, peak RSS +30 MB).
        """
        error = self._error(op, response)
        if self._moved(response, error):
            return
        try:
            raise error
        finally:
            del error

    def _moved(self, response: Any, error: ClientError) -> bool:
        """The bucket answered from another region or endpoint (a 301/307, or a signature
        for the wrong region): botocore's region redirector knows how to follow that, this
        path does not. From then on every request of this client goes through boto3."""
        code = error.response.get("Error", {}).get("Code")
        region = response.headers.get("x-amz-bucket-region")  # a HEAD's refusal has no body
        elsewhere = region is not None and region != self._region
        if response.status_code in (301, 307) or code in _REGION_CODES or elsewhere:
            self._redirected = True
        return self._redirected

    def _send(
        self,
        op: str,
        method: str,
        bucket: str,
        key: str,
        headers: dict[str, str],
        body: bytes | None,
        payload_sha256: str,
    ) -> Any:
        """Sign and send; botocore's ``before-send`` handlers (moto, a recorder) see the
        request first and may answer it, as they would a boto3 call's."""
        target = f"{self._base_path}/{bucket}/{quote(key, safe='/~')}"
        headers["Host"] = self._host
        self._signer.sign(method, target, headers, payload_sha256)
        request = AWSPreparedRequest(
            method,
            f"{self._endpoint}/{bucket}/{quote(key, safe='/~')}",
            HeadersDict(headers),
            body,
            False,
        )
        _, intercepted = self._events.emit_until_response(f"before-send.s3.{op}", request=request)
        if intercepted is not None:
            return intercepted
        if self._wire is not None:
            return self._wire.send(method, target, headers, body)
        return self._session.send(request)

    def _parse(self, op: str, response: Any) -> dict[str, Any]:
        parser = getattr(self._parser, "value", None)
        if parser is None:
            parser = self._parser.value = create_parser("rest-xml")
        parsed: dict[str, Any] = parser.parse(
            {
                "status_code": response.status_code,
                "headers": HeadersDict(response.headers.items()),
                "body": response.content,
            },
            self._models[op].output_shape,
        )
        return parsed

    def _error(self, op: str, response: Any) -> ClientError:
        """The ClientError botocore would raise for this answer (same parser, same class)."""
        parsed = self._parse(op, response)
        code = parsed.get("Error", {}).get("Code")
        error_class = self._client.exceptions.from_code(code) if code else ClientError
        error: ClientError = error_class(parsed, op)
        return error


def _user_agent_extra(client: Any) -> str:
    extra = getattr(client.meta.config, "user_agent_extra", None)
    return str(extra or "")


# One LeanS3 per client, dropped with it (clients are rebuilt on an endpoint change).
_BY_CLIENT: weakref.WeakKeyDictionary[Any, LeanS3 | None] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def lean_s3_for(client: Any) -> LeanS3 | None:
    """This client's lean PutObject, or None when its requests need botocore's pipeline."""
    try:
        return _BY_CLIENT[client]
    except (KeyError, TypeError):
        pass
    with _LOCK:
        try:
            lean = LeanS3(client) if LeanS3.eligible(client) else None
        except AttributeError:  # not a botocore client (a test double): use put_object
            lean = None
        with contextlib.suppress(TypeError):  # not weak-referenceable: ask again next time
            _BY_CLIENT[client] = lean
    return lean


def put_object(
    client: Any,
    params: dict[str, Any],
    *,
    sha256_hex: str,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``client.put_object(**params)`` (a body whose SHA-256 is ``sha256_hex``), on the lean
    path where the client and the request allow it; retried there as the client's own
    calls are: transient errors only (5xx, throttling, the network), up to the client's
    ``total_max_attempts``, waits from the one backoff policy (`backoff.S3_CALL`)."""
    lean = lean_s3_for(client)
    if lean is None or not LeanS3.accepts(params):
        return dict(client.put_object(**params))
    retries = getattr(client.meta.config, "retries", None) or {}
    attempts = int(retries.get("total_max_attempts") or retries.get("max_attempts", 2) + 1)
    attempt = 0
    while True:
        attempt += 1
        try:
            return lean.put(params, sha256_hex=sha256_hex)
        except Exception as exc:
            if attempt >= attempts or not s3errors.is_retryable(exc):
                raise
        sleep(backoff_delay(attempt, base=S3_CALL[0], cap=S3_CALL[1]))


def head_object(client: Any, bucket: str, key: str) -> dict[str, Any]:
    """``client.head_object(Bucket=bucket, Key=key)``, on the lean path where the client
    and the key allow it (botocore's pipeline is most of a HEAD's CPU)."""
    lean = lean_s3_for(client) if plain_key(key) else None
    if lean is not None:
        return lean.head(bucket, key)
    return dict(client.head_object(Bucket=bucket, Key=key))


def head_object_or_none(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """`head_object`, or None when the key does not exist (a 404); other refusals raise."""
    lean = lean_s3_for(client) if plain_key(key) else None
    if lean is not None:
        return lean.head_or_none(bucket, key)
    return _boto3_head(client, bucket, key, missing_ok=True)


def _boto3_head(client: Any, bucket: str, key: str, *, missing_ok: bool) -> dict[str, Any] | None:
    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if not (missing_ok and s3errors.is_not_found(exc)):
            raise
    return None  # outside the handler: no frame keeps the error (see _raise_unless_moved)


__all__ = [
    "LeanS3",
    "head_object",
    "head_object_or_none",
    "lean_s3_for",
    "plain_key",
    "put_object",
]

"""Every setting read from the environment, in one validated object.

Why one module: a reader finds every ``GENBLAZE_*`` variable (and the few standard
ones we honour: ``PORT``, ``AWS_*``, ``B2_*``), its type, default and reason in one
screen, and a bad value fails where it is read, naming its variable
(``GENBLAZE_MAX_RETRIES: expected an integer, got 'abc'``), instead of deep inside a
copy. Only this module reads ``os.environ`` (a unit test greps for it): entry points
(the Celery worker, the API app factory, the CLI, a ``QueuedStorageSink`` built
without explicit values) call :func:`load_settings` once and pass typed values down.

Adding a variable: add a typed field to :class:`Settings`, ``name: int =
Field(default=..., description="...")`` (constraints such as ``ge=1`` make a bad
value fail here, named); its variable is ``GENBLAZE_`` + the field name
upper-cased (or the ``validation_alias`` it names). Then pass the value (or an
object built from it, like ``fetch_policy()``) down from the entry point.
:func:`describe` turns the fields into the README's configuration table, so the
description is the documentation.

Defaults are safe: SSRF guard on, no plain http, no private hosts.

A leaf: this module imports only pydantic and the standard library. What is built from
the settings (tenants, policies, the signer, the service, a worker's context) is built
in :mod:`genblaze_s3.runtime` and by the ``from_settings`` constructors beside each type;
the values here are only parsed (:func:`parse_rate`, :func:`parse_token_pairs`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "GENBLAZE_"
# = genblaze_s3.transfer.config.DEFAULT_MAX_SOURCE_BYTES (the library's own default; a unit
# test pins the two equal: this module is a leaf and imports no project module).
DEFAULT_MAX_SOURCE_BYTES = 5 * 1024**3
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "genblaze-ingest"
DEFAULT_API_URL = "http://127.0.0.1:8000"
TASK_TIME_LIMIT = 6 * 3600  # Celery's hard kill (workers/celery_app.py): 6 h is stuck, not slow
# Deliveries are bounded by the slice, so a Redis broker may redeliver an unacked message
# after 2 minutes: a dead host's work is back within minutes; a longer, unsliceable copy
# is redelivered meanwhile and the duplicate backs off on the lease. (Before slicing it
# had to exceed the time limit: 7 h, how long a dead host held its job.)
DEFAULT_VISIBILITY_TIMEOUT = 120
# A copy works this long in one delivery, then checkpoints and sends its continuation.
# Measured (bench/results/slices.md): a boundary costs ~0.1-0.5 s, so 10 s keeps it to a
# few percent of a long copy, and a 1 GiB copy here mostly runs in one slice (no cost
# resolvable from "off" on a shared machine); short enough that no delivery comes near
# RabbitMQ's consumer_timeout (20 s in the acceptance row) or the visibility timeout.
DEFAULT_SLICE_SECONDS = 10.0

# Fields whose empty value means something ("" = "none"), rather than "use the default".
_EMPTY_IS_A_VALUE = frozenset({"allowed_endpoints", "api_rate_limit"})

CommaList = Annotated[tuple[str, ...], NoDecode]
CeleryPool = Literal["prefork", "processes", "threads", "solo", "eventlet", "gevent", "custom"]


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take.

    The message names the variable and the expected type, never a secret's value.
    """


class _EnvironSettings(BaseSettings):
    """Base of our settings models: explicit values, then the environment (or the
    mapping given to :func:`load_settings`), and nothing else (no .env, no secrets dir)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _MappingEnvSource(settings_cls, _ENVIRON.get())


class Settings(_EnvironSettings):
    """The process's configuration; build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    # -- store and broker ------------------------------------------------------------
    redis_url: str = Field(
        default=DEFAULT_REDIS_URL,
        description="Redis holding the status store (job and asset state).",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis:// or amqp://); default: the status store's Redis.",
    )
    queue: str = Field(default=DEFAULT_QUEUE, description="Broker queue the jobs are sent to.")
    retention_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="How long job records stay in the store (seconds)."
    )
    batch_max: int = Field(
        default=16,
        ge=1,
        description="Most assets per queue message of a large job (smaller jobs go in chunks "
        "of 4; 1: a message per asset; docs/RELIABILITY.md).",
    )
    source_key: SecretStr | None = Field(
        default=None,
        description="Fernet key encrypting raw source URLs at rest in Redis; shared by the "
        "API/sink and the workers (unset: stored as is, for development).",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks secret (`whsec_...`) for tenants without their own "
        "`webhook_secret`; unset: their webhooks are sent unsigned.",
    )

    # -- what a job may reach ----------------------------------------------------------
    allow_http: bool = Field(
        default=False, description="Allow plain http:// sources (development and tests only)."
    )
    allow_private_hosts: CommaList = Field(
        default=(),
        description="Comma-separated hosts that may resolve to private or loopback "
        "addresses (development and tests only).",
    )
    max_source_bytes: int = Field(
        default=DEFAULT_MAX_SOURCE_BYTES,
        gt=0,
        description="Size cap on a source download in bytes (larger: `too_large`).",
    )
    ca_bundle: str | None = Field(
        default=None,
        description=(
            "CA bundle (PEM) trusted for https sources (unset: certifi's, as requests "
            "uses); one that cannot be loaded fails copies with `source_tls_failed`."
        ),
    )
    allowed_endpoints: CommaList | None = Field(
        default=None,
        description="Comma-separated S3 endpoints a worker signs for, besides official "
        "AWS S3 and B2 (unset: AWS_ENDPOINT_URL; empty: official endpoints only).",
    )
    allowed_buckets: CommaList | None = Field(
        default=None, description="Comma-separated buckets a worker writes to (unset: any)."
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias="AWS_ENDPOINT_URL",
        description="The S3 endpoint of this deployment (allowed by default; CLI default).",
    )

    # -- worker ------------------------------------------------------------------------
    worker_concurrency: int = Field(
        default=2,
        ge=1,
        description="Pool processes per worker (`genblaze-ingest worker`, Procfile).",
    )
    worker_pool: CeleryPool = Field(
        default="prefork",
        description="Celery pool of `genblaze-ingest worker` and the Procfile "
        "(prefork survives a killed child).",
    )
    chunk_threads: int = Field(
        default=4,
        ge=1,
        description="Copies a chunk runs at once inside one pool child (each holds one "
        "copy's part buffers).",
    )
    lease_ttl_ms: int = Field(
        default=30000,
        gt=0,
        description="Per-asset lease (ms), renewed while a copy runs; a duplicate delivery "
        "exits without side effects.",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one asset counted in Redis before it fails "
        "(`too_many_attempts`: a poison task).",
    )
    max_retries: int = Field(
        default=5, ge=0, description="Retries of a retryable copy or finalize error before failing."
    )
    visibility_timeout: int = Field(
        default=DEFAULT_VISIBILITY_TIMEOUT,
        gt=0,
        description="Redis broker: seconds before an unacked message is redelivered "
        "(deliveries are bounded by the slice; a duplicate backs off on the lease).",
    )
    slice_seconds: float = Field(
        default=DEFAULT_SLICE_SECONDS,
        ge=0,
        description="Seconds a copy works in one delivery before it checkpoints and "
        "continues in the next (Range at the next byte); 0: one delivery per copy.",
    )
    sweep_interval: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between sweeps re-enqueuing work a broker lost (one sweep "
        "per interval fleet-wide, run by every worker); 0: no sweeper on this worker.",
    )
    heartbeat_interval: float = Field(
        default=2.0,
        ge=0,
        description="Seconds between a worker's heartbeats in the store (host, pool, active "
        "copies: the fleet view's workers table; dead after 5 missed); 0: none.",
    )
    sweep_grace: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a started asset may go without a lease, or a queued one "
        "without a delivery, before a sweep re-enqueues it (keep it above the lease TTL).",
    )
    unacked_restore_interval: int = Field(
        default=60, gt=0, description="Redis broker: seconds between sweeps for unacked messages."
    )
    source_read_timeout: float | None = Field(
        default=None, gt=0, description="Seconds without a byte from a source: source_too_slow."
    )
    source_min_rate: float | None = Field(
        default=None, ge=0, description="Bytes/s below which a trickling source fails..."
    )
    source_min_rate_grace: float | None = Field(
        default=None, ge=0, description="...once this many seconds of the download have passed."
    )
    source_deadline: float | None = Field(
        default=None, gt=0, description="Seconds allowed for one whole download."
    )
    cas_mode: Literal["auto", "spool", "refetch"] | None = Field(
        default=None,
        description="How a content-addressed copy with an unknown hash learns its key: "
        "auto, spool (local disk) or refetch (read twice); unset: auto.",
    )
    spool_dir: str | None = Field(
        default=None, description="Where spooled bodies go (unset: the temp directory)."
    )
    max_refreshes: int = Field(
        default=3,
        ge=0,
        description="Fresh source URLs a worker may ask a job's refresher for, per asset "
        "(after 401/403/410 or a passed stated expiry).",
    )
    source_ready_wait: float = Field(
        default=600.0,
        ge=0,
        description="Seconds an asset may wait for a 'not ready' source (404/425/503 with "
        "Retry-After) before it fails `source_not_found`.",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key signing manifests (PEM text, a PEM file path or "
        "base64 of the raw 32 bytes); unset: manifests are not signed. Rotate by "
        "replacing it; verifiers keep the old public key in GENBLAZE_TRUSTED_KEYS_FILE.",
    )
    trusted_keys_file: str | None = Field(
        default=None,
        description="PEM file of the Ed25519 public keys `genblaze-ingest verify` trusts "
        "(current and retired signing keys; each manifest names its key id); a trusted key "
        "makes a valid signature mandatory.",
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "B2_KEY_ID"),
        description="The workers' S3 key id (or B2_KEY_ID); jobs never carry credentials.",
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "B2_APP_KEY"),
        description="The workers' S3 secret (or B2_APP_KEY).",
    )

    # -- API ---------------------------------------------------------------------------
    tenants_file: str | None = Field(
        default=None,
        description="TOML or JSON file of tenants: tokens, buckets, prefix root, webhook "
        "secret, limits (docs/SECURITY.md); read by the API, sinks and workers.",
    )
    api_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="API bearer tokens as 'tenant:token,tenant2:token2' when there is no "
        "tenants file (several tenants: each name is its key prefix root; unset: the API "
        "refuses every request).",
    )
    operator_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="Operator tokens for the fleet view when the tenants file has no "
        "`operators` table, as 'name:token:admin,name2:token2:viewer' (viewer: read only; "
        "unset: no operator, the fleet view refuses every request).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body the API reads (413 above it), checked after "
        "authentication.",
    )
    max_retention_days: int = Field(
        default=3650,  # ingest.validation.DEFAULT_MAX_RETENTION_DAYS (a library default too)
        ge=1,
        description="Longest manifest lock (retain_until) a job may ask for, in days.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics requires (unset: /metrics is open; serve it on an "
        "internal network only).",
    )
    api_rate_limit: str = Field(
        default="1000/1",
        description="Per-token rate as 'requests/seconds', answered 429 + Retry-After above "
        "it (empty: no limit).",
    )
    api_host: str = Field(default="127.0.0.1", description="Address `genblaze-ingest api` binds.")
    port: int = Field(
        default=8000, gt=0, lt=65536, validation_alias="PORT", description="Port of the API."
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of the API and the workers: 'text', or 'json' (one object per "
        "line with job_id, asset_id and tenant where known).",
    )

    # -- CLI client --------------------------------------------------------------------
    api_url: str = Field(default=DEFAULT_API_URL, description="API the CLI talks to.")
    api_token: SecretStr | None = Field(default=None, description="The CLI's bearer token.")
    bucket: str | None = Field(
        default=None, description="Default bucket of `genblaze-ingest submit`."
    )

    # -- validation --------------------------------------------------------------------
    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any, info: Any) -> Any:
        """An empty variable is unset (as ``VAR= cmd`` usually means), unless "" is a value."""
        if isinstance(value, str) and not value.strip():
            if info.field_name in _EMPTY_IS_A_VALUE:
                return "" if info.field_name == "api_rate_limit" else ()
            raise PydanticUseDefault()
        return value

    @field_validator("allow_private_hosts", "allowed_endpoints", "allowed_buckets", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("api_tokens")
    @classmethod
    def _tokens_parse(cls, value: SecretStr) -> SecretStr:
        parse_token_pairs(value.get_secret_value())
        return value

    @field_validator("api_rate_limit")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        parse_rate(value)
        return value

    # -- derived values ------------------------------------------------------------------
    @property
    def effective_broker_url(self) -> str:
        """The broker defaults to the status store's Redis."""
        return self.broker_url or self.redis_url

    def secret(self, name: str) -> str | None:
        """The plain value of a secret setting (``source_key``, ``webhook_secret``...)."""
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def worker_credentials(self) -> tuple[str | None, str | None]:
        """The workers' own S3 key pair (AWS_* or B2_*)."""
        return self.secret("aws_access_key_id"), self.secret("aws_secret_access_key")


class B2Settings(_EnvironSettings):
    """``S3StorageBackend.for_b2``'s environment (genblaze-s3 0.3.x names, unprefixed)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    bucket: str | None = Field(
        default=None,
        validation_alias=AliasChoices("B2_BUCKET", "B2_BUCKET_NAME"),
        description="Backblaze B2 bucket of `S3StorageBackend.for_b2()`.",
    )
    region: str | None = Field(
        default=None, validation_alias="B2_REGION", description="B2 region (default us-west-004)."
    )
    key_id: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("B2_KEY_ID", "B2_APPLICATION_KEY_ID"),
        description="B2 application key id.",
    )
    app_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("B2_APP_KEY", "B2_APPLICATION_KEY"),
        description="B2 application key.",
    )


# -- values parsed here (pure: shared with the modules that use them) -------------------
def parse_rate(raw: str) -> tuple[float, float] | None:
    """'40/1' -> (40 requests, per 1 second); empty -> None (no limit)."""
    raw = raw.strip()
    if not raw:
        return None
    count, _, per = raw.partition("/")
    try:
        n, seconds = float(count), float(per or 1)
    except ValueError:
        n = seconds = 0.0
    if not (n > 0 and seconds > 0):  # also refuses NaN
        raise ValueError("GENBLAZE_API_RATE_LIMIT must look like 'requests/seconds'")
    return n, seconds


def parse_token_pairs(raw: str) -> list[tuple[str, str]]:
    """``tenant:token,tenant:token2`` (GENBLAZE_API_TOKENS) -> [(tenant, token), ...].

    Raises ValueError (never echoing a token) for an entry without a name or token.
    """
    pairs = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, token = item.partition(":")
        if not sep or not name or not token:
            raise ValueError("GENBLAZE_API_TOKENS entries must look like tenant:token")
        pairs.append((name, token))
    return pairs


# -- loading -----------------------------------------------------------------------------
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("genblaze_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (default: os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None):
        self._environ = os.environ if environ is None else environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # What pydantic-settings does with os.environ (its helper is private): names
        # matched case-insensitively, empty values dropped where the model says so.
        return {
            (k if self.case_sensitive else k.lower()): v
            for k, v in self._environ.items()
            if not (self.env_ignore_empty and v == "")
        }


_Model = TypeVar("_Model", bound=BaseSettings)


def _load(model: type[_Model], environ: Mapping[str, str] | None) -> _Model:
    """Build `model` from `environ` (default ``os.environ``); SettingsError on a bad value."""
    token = _ENVIRON.set(environ)
    try:
        return model()
    except ValidationError as exc:
        raise _settings_error(model, exc) from None
    finally:
        _ENVIRON.reset(token)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting (from `environ`, default ``os.environ``).

    Raises SettingsError naming each bad variable, e.g.
    ``GENBLAZE_MAX_RETRIES: expected an integer, got 'abc'``.
    """
    return _load(Settings, environ)


def load_b2_settings(environ: Mapping[str, str] | None = None) -> B2Settings:
    """The ``B2_*`` variables ``S3StorageBackend.for_b2`` falls back to."""
    return _load(B2Settings, environ)


def process_environ() -> dict[str, str]:
    """A copy of this process's environment, for development tools (the demo, the test
    supervisor) that start workers and the API with a few variables changed."""
    return dict(os.environ)


# -- errors and documentation ----------------------------------------------------------
_EXPECTED = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "a boolean (1/0, true/false, yes/no, on/off)",
}


def env_name(field: str, model: type[BaseSettings] = Settings) -> str:
    """The environment variable of a settings field (its first alias, else the prefixed name)."""
    info = model.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def _settings_error(model: type[BaseSettings], exc: ValidationError) -> SettingsError:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        name = env_name(field, model) if field in model.model_fields else field
        secret = field in model.model_fields and _is_secret(model.model_fields[field])
        expected = _EXPECTED.get(err["type"])
        got = "" if secret else f", got {err.get('input')!r}"
        if expected:
            lines.append(f"{name}: expected {expected}{got}")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ").removeprefix(f"{name} ")
            lines.append(f"{name}: {msg}{got}")
    return SettingsError("; ".join(lines))


def _is_secret(info: FieldInfo) -> bool:
    return SecretStr in (info.annotation, *get_args(info.annotation))

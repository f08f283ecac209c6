"""Who may write where: tenants, their tokens, buckets, prefix roots, secrets, limits.

One place answers every tenant question the submitters (HTTP API, CLI through
the API, `QueuedStorageSink`) and the workers ask:

- which tenant a bearer token belongs to (several tokens per tenant, so a token
  can be rotated without downtime; compared by SHA-256 digest in constant time);
- where a tenant's job may write: the buckets it may name and the key prefix
  root its job prefix is placed under (`acme` + `genblaze` -> `acme/genblaze`).
  Two tenants never share a root (nor one inside the other) unless both say
  `shared_prefix = true`: content-addressed deduplication and claimed hashes
  are only ever answered from the tenant's own keys;
- the secret its webhooks are signed with, whether it may lock manifests in
  COMPLIANCE mode, and its limits (assets per job, concurrent jobs).

Configuration (read by the entry points, see `registry_from_settings`):

- `GENBLAZE_TENANTS_FILE`: a TOML or JSON file, `{"tenants": {name: {...}}}`;
- else `GENBLAZE_API_TOKENS="tenant:token,..."` (the 0.4 form): one tenant keeps
  today's key layout (no root, identical to genblaze-core's inline sink);
  several tenants each get their own name as root;
- else no tenant at all: a single-tenant deployment, today's layout.

A tenant name a submitter uses that the registry does not list (a trusted
Python process writing Redis directly, e.g. `QueuedStorageSink(tenant=...)` with
no tenant file) is an *open* tenant: today's layout, no limits, the deployment
webhook secret; its prefix may not fall under another tenant's root.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genblaze_s3.ingest.errors import DestinationNotAllowedError, InvalidJobError
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.settings import Settings, SettingsError, parse_token_pairs

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ROOT_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,127}$")


class TenantConfigError(ValueError):
    """The tenants file (or GENBLAZE_API_TOKENS) is malformed or unsafe."""


def token_digest(token: str) -> bytes:
    """What the registry keeps of a token: its SHA-256 (tables never hold usable secrets)."""
    return hashlib.sha256(token.encode()).digest()


def _segments(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


@dataclass(frozen=True)
class Tenant:
    """One tenant's rights; immutable, built once per process."""

    name: str
    token_digests: tuple[bytes, ...] = ()
    buckets: frozenset[str] | None = None  # None: any bucket the deployment allows
    prefix_root: str = ""  # "": the job's prefix is used as given (today's layout)
    # Every secret its webhooks are signed with, current first: during a rotation both
    # the new and the old one sign, so receivers can switch at their own pace.
    webhook_secrets: tuple[str, ...] = ()
    allow_compliance: bool = False
    max_assets_per_job: int | None = None
    max_concurrent_jobs: int | None = None
    shared_prefix: bool = False
    configured: bool = True  # False for an open tenant (see the module doc)

    @property
    def webhook_secret(self) -> str | None:
        """The current webhook secret (the first one), if any."""
        return self.webhook_secrets[0] if self.webhook_secrets else None

    def place(self, dest: DestinationSpec) -> DestinationSpec:
        """The destination this tenant's job really writes: its bucket checked, its
        prefix placed under the tenant's root. Raises DestinationNotAllowedError."""
        if self.buckets is not None and dest.bucket not in self.buckets:
            raise DestinationNotAllowedError(f"bucket {dest.bucket!r} is not allowed")
        if not self.prefix_root:
            return dest
        placed = "/".join(_segments(self.prefix_root) + _segments(dest.prefix))
        return dest.model_copy(update={"prefix": placed})

    def owns(self, dest: DestinationSpec) -> bool:
        """Whether `dest` (already placed) lies inside this tenant's bucket list and root.

        The workers ask this before signing anything: a job record edited in Redis
        (or written by an older submitter) cannot make them write elsewhere.
        """
        if self.buckets is not None and dest.bucket not in self.buckets:
            return False
        root = _segments(self.prefix_root)
        return _segments(dest.prefix)[: len(root)] == root

    def check_lock_mode(self, mode: str) -> None:
        if mode == "COMPLIANCE" and not self.allow_compliance:
            raise InvalidJobError(
                "manifest_lock.mode: COMPLIANCE is not allowed for this tenant "
                "(a COMPLIANCE lock cannot be lifted by anyone, the operator included)",
                field="manifest_lock.mode",
            )

    def check_asset_count(self, n: int) -> None:
        if self.max_assets_per_job is not None and n > self.max_assets_per_job:
            raise InvalidJobError(
                f"this tenant may submit at most {self.max_assets_per_job} assets per job: "
                "split the URLs into several jobs (`genblaze-ingest submit --from-file` does)",
                field="assets",
            )


@dataclass(frozen=True)
class TenantRegistry:
    """Every configured tenant, looked up by name or by bearer token."""

    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    default_webhook_secret: str | None = None

    def __post_init__(self) -> None:
        _check_roots(list(self.tenants.values()))

    @property
    def configured(self) -> bool:
        return bool(self.tenants)

    def authenticate(self, header: str | None) -> Tenant | None:
        """The tenant owning the bearer token in `header`, else None.

        Every digest is compared (no early exit), so timing reveals neither how
        close a guess was nor which tenant it was near.
        """
        if not header or not header.lower().startswith("bearer "):
            return None
        return self.by_digest(token_digest(header[7:].strip()))

    def by_digest(self, presented: bytes) -> Tenant | None:
        """The tenant holding a token of this SHA-256 digest (a /ui session keeps only
        the digest of the token it was opened with)."""
        found: Tenant | None = None
        for tenant in self.tenants.values():
            for digest in tenant.token_digests:
                if hmac.compare_digest(presented, digest):
                    found = tenant
        return found

    def get(self, name: str) -> Tenant:
        """The configured tenant `name`, else an open tenant of that name."""
        tenant = self.tenants.get(name)
        if tenant is not None:
            return tenant
        return Tenant(
            name=name, webhook_secrets=_secrets(self.default_webhook_secret), configured=False
        )

    def place(self, tenant: Tenant, dest: DestinationSpec) -> DestinationSpec:
        """`tenant.place(dest)`, plus: an open tenant stays out of every tenant's root."""
        placed = tenant.place(dest)
        if not tenant.configured and not self.owns(tenant, placed):
            raise DestinationNotAllowedError(
                f"prefix {placed.prefix!r} lies under another tenant's prefix root"
            )
        return placed

    def owns(self, tenant: Tenant, dest: DestinationSpec) -> bool:
        """Worker-side check: `dest` is inside `tenant`'s rights and no one else's root."""
        if not tenant.owns(dest):
            return False
        if tenant.configured:
            return True
        parts = _segments(dest.prefix)
        for other in self.tenants.values():
            root = _segments(other.prefix_root)
            if root and parts[: len(root)] == root:
                return False
        return True

    # -- placement rules, shared with the other side of the queue -------------
    def placement_rules(self) -> dict[str, Any]:
        """What decides where a job may write, without a secret: every tenant's buckets,
        prefix root and sharing flag. Workers publish it (`store/placement.py`) so a
        submitter can tell that it would place a job where no worker writes."""
        return {
            name: {
                "buckets": sorted(t.buckets) if t.buckets is not None else None,
                "prefix_root": t.prefix_root,
                "shared_prefix": t.shared_prefix,
            }
            for name, t in sorted(self.tenants.items())
        }

    def placement_fingerprint(self) -> str:
        """A short digest of `placement_rules` (equal rules, equal fingerprint)."""
        text = json.dumps(self.placement_rules(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_placement_rules(cls, rules: Mapping[str, Any]) -> TenantRegistry:
        """The registry a worker places with, rebuilt from its published rules (no tokens,
        no secrets: enough to ask `owns` the worker's question)."""
        return cls(
            {
                name: Tenant(
                    name=name,
                    buckets=frozenset(r["buckets"]) if r.get("buckets") is not None else None,
                    prefix_root=str(r.get("prefix_root") or ""),
                    shared_prefix=bool(r.get("shared_prefix", False)),
                )
                for name, r in rules.items()
            }
        )

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_api_tokens(cls, raw: str, webhook_secret: str | None = None) -> TenantRegistry:
        """`tenant:token,tenant:token2,other:token3` (GENBLAZE_API_TOKENS).

        One tenant: no prefix root (today's layout). Several: each tenant's name
        is its root, so they cannot overwrite or probe each other's keys.
        """
        tokens: dict[str, list[str]] = {}
        try:
            pairs = parse_token_pairs(raw)
        except ValueError as exc:
            raise TenantConfigError(str(exc)) from None
        for name, token in pairs:
            tokens.setdefault(name, []).append(token)
        several = len(tokens) > 1
        tenants = {
            name: Tenant(
                name=_check_name(name),
                token_digests=tuple(token_digest(t) for t in toks),
                prefix_root=name if several else "",
                webhook_secrets=_secrets(webhook_secret),
            )
            for name, toks in tokens.items()
        }
        return cls(tenants, webhook_secret)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], webhook_secret: str | None = None
    ) -> TenantRegistry:
        """The parsed tenants file: `{"tenants": {name: {tokens, buckets, ...}}}`."""
        section = data.get("tenants")
        if not isinstance(section, Mapping) or not section:
            raise TenantConfigError("the tenants file needs a non-empty `tenants` table")
        return cls(
            {name: _tenant_from(name, spec, webhook_secret) for name, spec in section.items()},
            webhook_secret,
        )

    @classmethod
    def from_file(cls, path: str | Path, webhook_secret: str | None = None) -> TenantRegistry:
        """Load TOML (`.toml`) or JSON (anything else) from `path`."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise TenantConfigError(f"GENBLAZE_TENANTS_FILE {p}: {exc.strerror}") from exc
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
            raise TenantConfigError(f"GENBLAZE_TENANTS_FILE {p} does not parse: {exc}") from exc
        if not isinstance(data, Mapping):
            raise TenantConfigError(f"GENBLAZE_TENANTS_FILE {p} must hold a table")
        return cls.from_mapping(data, webhook_secret)


def registry_from(
    tenants_file: str | None, api_tokens: str | None, webhook_secret: str | None
) -> TenantRegistry:
    """The one rule every entry point applies: the file wins, then the token list."""
    if tenants_file:
        if api_tokens:
            raise TenantConfigError(
                "set GENBLAZE_TENANTS_FILE or GENBLAZE_API_TOKENS, not both "
                "(which tokens would be valid?)"
            )
        return TenantRegistry.from_file(tenants_file, webhook_secret)
    return TenantRegistry.from_api_tokens(api_tokens or "", webhook_secret)


def registry_from_settings(config: Settings) -> TenantRegistry:
    """:func:`registry_from` on the settings; SettingsError names the variable for a
    malformed or unsafe configuration (never echoing a token)."""
    try:
        return registry_from(
            config.tenants_file,
            config.api_tokens.get_secret_value() or None,
            config.secret("webhook_secret"),
        )
    except TenantConfigError as exc:
        name = "GENBLAZE_TENANTS_FILE" if config.tenants_file else "GENBLAZE_API_TOKENS"
        raise SettingsError(f"{name}: {exc}") from exc


_KNOWN_FIELDS = frozenset(
    {
        "tokens",
        "token_sha256",
        "buckets",
        "prefix_root",
        "webhook_secret",
        "allow_compliance",
        "max_assets_per_job",
        "max_concurrent_jobs",
        "shared_prefix",
    }
)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TenantConfigError(
            f"tenant name {name!r}: letters, digits, '_', '.', '-' only, at most 63 characters"
        )
    return name


def _tenant_from(name: str, spec: Any, default_secret: str | None) -> Tenant:
    _check_name(name)
    if not isinstance(spec, Mapping):
        raise TenantConfigError(f"tenant {name!r} must be a table")
    unknown = set(spec) - _KNOWN_FIELDS
    if unknown:
        raise TenantConfigError(f"tenant {name!r}: unknown field(s) {sorted(unknown)}")
    digests = [token_digest(t) for t in _strings(name, "tokens", spec.get("tokens", []))]
    for hexed in _strings(name, "token_sha256", spec.get("token_sha256", [])):
        try:
            digests.append(bytes.fromhex(hexed))
        except ValueError as exc:
            raise TenantConfigError(f"tenant {name!r}: token_sha256 must be hex") from exc
    buckets = spec.get("buckets")
    root = spec.get("prefix_root", name)
    if not isinstance(root, str) or not all(_ROOT_SEGMENT.fullmatch(s) for s in _segments(root)):
        raise TenantConfigError(f"tenant {name!r}: prefix_root must be plain path segments")
    return Tenant(
        name=name,
        token_digests=tuple(digests),
        buckets=frozenset(_strings(name, "buckets", buckets)) if buckets is not None else None,
        prefix_root="/".join(_segments(root)),
        webhook_secrets=_webhook_secrets(name, spec.get("webhook_secret"), default_secret),
        allow_compliance=bool(spec.get("allow_compliance", False)),
        max_assets_per_job=_positive(name, "max_assets_per_job", spec.get("max_assets_per_job")),
        max_concurrent_jobs=_positive(name, "max_concurrent_jobs", spec.get("max_concurrent_jobs")),
        shared_prefix=bool(spec.get("shared_prefix", False)),
    )


def _secrets(secret: str | None) -> tuple[str, ...]:
    return (secret,) if secret else ()


def _webhook_secrets(name: str, value: Any, default: str | None) -> tuple[str, ...]:
    """`webhook_secret = "whsec_..."`, or a list (current first) while rotating."""
    if value is None or value == "":
        return _secrets(default)
    if isinstance(value, str):
        return (value,)
    return tuple(_strings(name, "webhook_secret", value))


def _strings(name: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TenantConfigError(f"tenant {name!r}: {key} must be a list of non-empty strings")
    return list(value)


def _positive(name: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TenantConfigError(f"tenant {name!r}: {key} must be a positive integer")
    return value


def _check_roots(tenants: Iterable[Tenant]) -> None:
    """Refuse two tenants whose roots overlap (equal, or one inside the other) unless
    both opted into sharing, and a token that opens two tenants."""
    listed = list(tenants)
    seen: dict[bytes, str] = {}
    for t in listed:
        for d in t.token_digests:
            if seen.setdefault(d, t.name) != t.name:
                raise TenantConfigError(f"one token opens both {seen[d]!r} and {t.name!r}")
    for i, a in enumerate(listed):
        for b in listed[i + 1 :]:
            if a.buckets is not None and b.buckets is not None and not a.buckets & b.buckets:
                continue  # no bucket in common: no key in common
            ra, rb = _segments(a.prefix_root), _segments(b.prefix_root)
            n = min(len(ra), len(rb))
            if ra[:n] == rb[:n] and not (a.shared_prefix and b.shared_prefix):
                raise TenantConfigError(
                    f"tenants {a.name!r} and {b.name!r} have overlapping prefix roots "
                    f"({a.prefix_root or '(none)'!r}, {b.prefix_root or '(none)'!r}); "
                    "set shared_prefix = true on both to share keys and deduplication"
                )

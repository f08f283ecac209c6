"""Who runs the fleet: operator tokens, separate from every tenant's.

A tenant sees its own jobs; an operator sees the whole fleet (workers, queues,
throughput, failures across tenants) and, with the `admin` role, may retry or
cancel a filtered set of jobs. A `viewer` operator sees the same and changes
nothing. Operator tokens are kept as SHA-256 digests, like tenant tokens, and a
token may not open both an operator and a tenant (which powers would it carry?).

Configuration, read by the API's entry point (`operators_from_settings`):

- the tenants file's `operators` table: `[operators.alice] tokens = ["..."]`
  (or `token_sha256 = ["<hex>"]`), `role = "admin" | "viewer"`;
- else `GENBLAZE_OPERATOR_TOKENS="alice:token:admin,bob:token2:viewer"` (role
  omitted: viewer, the least power);
- else none: the fleet view answers 401 to everyone.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from genblaze_s3.ingest.tenants import TenantConfigError, TenantRegistry, token_digest
from genblaze_s3.settings import Settings, SettingsError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
_FIELDS = frozenset({"tokens", "token_sha256", "role"})


class OperatorRole(StrEnum):
    """What an operator may do: `viewer` reads the fleet, `admin` also acts on it."""

    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Operator:
    """One operator: a name for the audit log, token digests, a role."""

    name: str
    token_digests: tuple[bytes, ...]
    role: OperatorRole = OperatorRole.VIEWER

    @property
    def can_act(self) -> bool:
        return self.role is OperatorRole.ADMIN


@dataclass(frozen=True)
class OperatorRegistry:
    """Every configured operator, looked up by token digest in constant time."""

    operators: Mapping[str, Operator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: dict[bytes, str] = {}
        for op in self.operators.values():
            for d in op.token_digests:
                if seen.setdefault(d, op.name) != op.name:
                    raise TenantConfigError(
                        f"one token opens operators {seen[d]!r} and {op.name!r}"
                    )

    def by_digest(self, presented: bytes) -> Operator | None:
        """The operator holding a token of this digest; every digest is compared."""
        found: Operator | None = None
        for op in self.operators.values():
            for digest in op.token_digests:
                if hmac.compare_digest(presented, digest):
                    found = op
        return found

    def check_disjoint(self, tenants: TenantRegistry) -> None:
        """Refuse a token that opens a tenant and an operator (fail closed, at start)."""
        for op in self.operators.values():
            for d in op.token_digests:
                if tenants.by_digest(d) is not None:
                    raise TenantConfigError(
                        f"operator {op.name!r} shares a token with a tenant; "
                        "give operators their own tokens"
                    )

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_tokens(cls, raw: str) -> OperatorRegistry:
        """`name:token[:role],...` (GENBLAZE_OPERATOR_TOKENS)."""
        tokens: dict[str, list[str]] = {}
        roles: dict[str, OperatorRole] = {}
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, rest = item.partition(":")
            token, _, role = rest.partition(":")
            if not sep or not name or not token:
                raise TenantConfigError(
                    "GENBLAZE_OPERATOR_TOKENS entries must look like name:token[:admin|viewer]"
                )
            new_role = _role(name, role or OperatorRole.VIEWER.value)
            if roles.setdefault(name, new_role) != new_role:
                raise TenantConfigError(f"operator {name!r} is given two roles")
            tokens.setdefault(_check_name(name), []).append(token)
        return cls(
            {
                n: Operator(n, tuple(token_digest(t) for t in toks), roles[n])
                for n, toks in tokens.items()
            }
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> OperatorRegistry:
        """The tenants file's `operators` table (absent: no operators)."""
        section = data.get("operators", {})
        if not isinstance(section, Mapping):
            raise TenantConfigError("`operators` must be a table of name -> {tokens, role}")
        return cls({name: _operator_from(name, spec) for name, spec in section.items()})


def operators_from_settings(
    tenants_file: str | None, operator_tokens: str | None
) -> OperatorRegistry:
    """The tenants file's `operators` table, else GENBLAZE_OPERATOR_TOKENS, else none."""
    if tenants_file:
        p = Path(tenants_file)
        try:
            text = p.read_text()
            data: Any = _parse(p, text)
        except OSError as exc:
            raise TenantConfigError(f"GENBLAZE_TENANTS_FILE {p}: {exc.strerror}") from exc
        except ValueError as exc:
            raise TenantConfigError(f"GENBLAZE_TENANTS_FILE {p} does not parse: {exc}") from exc
        from_file = _from_data(data)
        if from_file.operators and operator_tokens:
            raise TenantConfigError(
                "operators are in GENBLAZE_TENANTS_FILE and GENBLAZE_OPERATOR_TOKENS: keep one"
            )
        if from_file.operators:
            return from_file
    return OperatorRegistry.from_tokens(operator_tokens or "")


def _from_data(data: Any) -> OperatorRegistry:
    if not isinstance(data, Mapping):
        raise TenantConfigError("the tenants file must hold a table")
    return OperatorRegistry.from_mapping(data)


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".toml":
        import tomllib

        return tomllib.loads(text)
    return json.loads(text)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TenantConfigError(
            f"operator name {name!r}: letters, digits, '_', '.', '@', '-' only, at most 63"
        )
    return name


def _role(name: str, value: Any) -> OperatorRole:
    try:
        return OperatorRole(value)
    except ValueError as exc:
        raise TenantConfigError(f"operator {name!r}: role must be 'admin' or 'viewer'") from exc


def _operator_from(name: str, spec: Any) -> Operator:
    _check_name(name)
    if not isinstance(spec, Mapping):
        raise TenantConfigError(f"operator {name!r} must be a table")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise TenantConfigError(f"operator {name!r}: unknown field(s) {sorted(unknown)}")
    digests: list[bytes] = []
    for key in ("tokens", "token_sha256"):
        values = spec.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise TenantConfigError(f"operator {name!r}: {key} must be a list of strings")
        for v in values:
            try:
                digests.append(token_digest(v) if key == "tokens" else bytes.fromhex(v))
            except ValueError as exc:
                raise TenantConfigError(f"operator {name!r}: token_sha256 must be hex") from exc
    if not digests:
        raise TenantConfigError(f"operator {name!r} has no token")
    return Operator(name, tuple(digests), _role(name, spec.get("role", "viewer")))


def operators_for(config: Settings, tenants: TenantRegistry) -> OperatorRegistry:
    """`operators_from_settings` on the settings, checked against the tenants' tokens;
    SettingsError names the variable (never echoing a token)."""
    try:
        ops = operators_from_settings(
            config.tenants_file, config.operator_tokens.get_secret_value() or None
        )
        ops.check_disjoint(tenants)
    except TenantConfigError as exc:
        name = "GENBLAZE_TENANTS_FILE" if config.tenants_file else "GENBLAZE_OPERATOR_TOKENS"
        raise SettingsError(f"{name}: {exc}") from exc
    return ops

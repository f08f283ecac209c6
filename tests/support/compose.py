"""docker-compose.yml read the way `docker compose` reads it, for tests without a docker engine.

Why our own interpolation: no docker runs here, yet a test must see what a user gets,
e.g. that `docker compose up` refuses to start when a secret is unset. Compose resolves
`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` and
`$$` (a literal `$`) in every string of the file, then merges `<<:` anchors (YAML does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariableError(ValueError):
    """A `${VAR:?message}` was unset: `docker compose` refuses to start with this message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """One string resolved as compose resolves it against `env`."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and empty:
            return arg
        if op in (":?", "?") and empty:
            raise MissingVariableError(name, arg)
        return value or ""

    return _VAR.sub(sub, text)


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SHELL_VAR = re.compile(rf"\$(?:\{{(?P<braced>{_NAME})\}}|(?P<bare>{_NAME}))")


def shell_expand(text: str, env: Mapping[str, str]) -> str:
    """What a container's `sh -c` makes of plain `$VAR` / `${VAR}` (after compose's `$$`)."""
    return _SHELL_VAR.sub(lambda m: env.get(m.group("braced") or m.group("bare"), ""), text)


def _resolve(node: Any, env: Mapping[str, str], errors: list[MissingVariableError]) -> Any:
    if isinstance(node, str):
        try:
            return interpolate(node, env)
        except MissingVariableError as exc:
            errors.append(exc)
            return ""
    if isinstance(node, list):
        return [_resolve(v, env, errors) for v in node]
    if isinstance(node, dict):
        return {k: _resolve(v, env, errors) for k, v in node.items()}
    return node


def load_compose(path: Path, env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The file's services after interpolation, and the names of unset required variables."""
    raw = yaml.safe_load(path.read_text())
    errors: list[MissingVariableError] = []
    resolved = _resolve(raw, env, errors)
    return resolved, sorted({e.name for e in errors})


def raw_compose(path: Path) -> dict[str, Any]:
    """The file as YAML gives it (anchors merged, `${...}` kept as written)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data

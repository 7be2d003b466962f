"""Typed configuration keys with repman's names, validated into Python values.

One table per concern (watcher, routing, provisioning) lists its keys; the same
tables drive validation, ``--help`` text, the docs and the Nix options check, so
the schema has a single source of truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from repman.db import Credential, ServerAddress
from repman.errors import ConfigError

KINDS = ("str", "int", "float", "bool", "enum", "hostport", "hostports", "credential", "strlist", "path")


@dataclass(frozen=True)
class Key:
    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False
    #: hostport(s) keys: the port a bare host gets (repman: 3306 for database servers)
    default_port: int | None = None

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind


def resolve_secret_reference(value: Any, key: str) -> Any:
    """``{env: NAME}`` or ``{file: PATH}`` instead of an inline secret."""
    if not isinstance(value, Mapping):
        return value
    if set(value) == {"env"}:
        name = str(value["env"])
        if name not in os.environ:
            raise ConfigError(key, f"environment variable {name!r} is not set")
        return os.environ[name].strip()
    if set(value) == {"file"}:
        path = Path(str(value["file"]))
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from None
    if set(value) == {"encrypted"}:
        from repman.secret_store import resolve_encrypted
        return resolve_encrypted(value["encrypted"], key).strip()
    if set(value) == {"vault"}:
        from repman.secret_store import resolve_vault
        return resolve_vault(value["vault"], key).strip()
    raise ConfigError(key, "a reference must be {env: NAME} or {file: PATH} "
                           "(or {encrypted: TOKEN}, {vault: MOUNT/PATH#FIELD})")


def _int(value: Any, key: Key) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ConfigError(key.name, f"expected an integer, got {value!r}")
    return value


def _float(value: Any, key: Key) -> float:
    if isinstance(value, bool):
        raise ConfigError(key.name, f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(key.name, f"expected a number, got {value!r}") from None


def _bool(value: Any, key: Key) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "yes", "no"):
        return value.lower() in ("true", "on", "yes")
    raise ConfigError(key.name, f"expected true or false, got {value!r}")


def _hostports(value: Any, key: Key) -> list[ServerAddress]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(key.name, f"expected a list of host:port, got {value!r}")
    out = [ServerAddress.parse(v.strip() if isinstance(v, str) else v, key.name, key.default_port)
           for v in value]
    if len(set(out)) != len(out):
        raise ConfigError(key.name, "a server is listed twice")
    return out


def _strlist(value: Any, key: Key) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key.name, f"expected a list of strings, got {value!r}")
    return list(value)


def coerce(key: Key, value: Any) -> Any:
    """Validate one raw value into its Python type, or raise naming the key."""
    if value is None:
        return key.default
    if key.secret or key.kind == "credential":
        value = resolve_secret_reference(value, key.name)
    kind = key.kind
    if kind == "str" or kind == "path":
        if not isinstance(value, str):
            raise ConfigError(key.name, f"expected a string, got {value!r}")
        out: Any = value
    elif kind == "int":
        out = _int(value, key)
    elif kind == "float":
        out = _float(value, key)
    elif kind == "bool":
        out = _bool(value, key)
    elif kind == "enum":
        if value not in key.choices:
            raise ConfigError(key.name, f"{value!r} is not one of {', '.join(key.choices)}")
        out = value
    elif kind == "hostport":
        out = None if value == "" else ServerAddress.parse(value, key.name, key.default_port)
    elif kind == "hostports":
        out = _hostports(value, key)
    elif kind == "credential":
        out = Credential.parse(value, key.name)
    else:
        out = _strlist(value, key)
    if kind in ("int", "float"):
        if key.minimum is not None and out < key.minimum:
            raise ConfigError(key.name, f"{out!r} is below the minimum {key.minimum:g}")
        if key.maximum is not None and out > key.maximum:
            raise ConfigError(key.name, f"{out!r} is above the maximum {key.maximum:g}")
    return out


def validate_section(
    raw: Any, tables: Sequence[Mapping[str, Key]], where: str = "",
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """Validate a mapping of repman keys; unknown keys and missing required keys are errors."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, Mapping):
        raise ConfigError(where or "config", f"expected a mapping of keys, got {type(raw).__name__}")
    known: dict[str, Key] = {}
    for table in tables:
        known.update(table)
    for name in raw:
        if name not in known:
            raise ConfigError(f"{prefix}{name}", "unknown key")
    for name in required:
        if raw.get(name) in (None, "", []):
            raise ConfigError(f"{prefix}{name}", "is required")
    from repman.secret_store import KEY_PATH_KEY, key_path_in_effect
    out: dict[str, Any] = {}
    key_path = raw.get(KEY_PATH_KEY)
    with key_path_in_effect(key_path if isinstance(key_path, str) else ""):  # for {encrypted: ...} values
        for name, key in known.items():
            try:
                out[name] = coerce(key, raw.get(name))
            except ConfigError as exc:
                raise ConfigError(f"{prefix}{name}", str(exc).split(": ", 1)[1]) from None
    return out


def key_table(*keys: Key) -> dict[str, Key]:
    return {k.name: k for k in keys}


def describe(tables: Sequence[Mapping[str, Key]], formatter: Callable[[Key], str] | None = None) -> str:
    fmt = formatter or (lambda k: f"  {k.name:<44} {k.kind:<10} default {k.default!r}: {k.help}")
    return "\n".join(fmt(k) for t in tables for k in t.values())

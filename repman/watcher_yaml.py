"""The watcher's YAML config for a provisioned cluster (format: docs/ARCHITECTURE.md).

The provisioner knows the servers, the preferred master, the proxy and the
credentials; the stack may add any watcher/routing key. Secrets never go into
the YAML itself: they become ``{file: PATH}`` references (local watcher: one
0600 file per secret) or ``{env: NAME}`` references (a watcher run elsewhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from typing import Any, Callable, Mapping

import yaml

from repman.api.keys import API_KEYS
from repman.db import ServerAddress
from repman.keys import coerce
from repman.spec import ClusterSpec, watcher_passthrough_keys

SecretRef = Callable[[str], Any]
CREDENTIAL_KEYS = ("db-servers-credential", "replication-credential")


def env_name(key: str) -> str:
    """``db-servers-credential`` -> ``REPMAN_DB_SERVERS_CREDENTIAL``."""
    return "REPMAN_" + re.sub(r"[^A-Z0-9]", "_", key.upper())


def env_ref(key: str) -> dict[str, str]:
    return {"env": env_name(key)}


def file_ref(secrets_dir: PurePath) -> SecretRef:
    return lambda key: {"file": str(secrets_dir / key)}


def _is_reference(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) in ({"env"}, {"file"})


def secret_values(spec: ClusterSpec) -> dict[str, str]:
    """Every secret the watcher needs, by key: credentials and secret passthrough keys
    given inline (a key the stack already gave as a reference is not copied)."""
    out = {
        "db-servers-credential": f"{spec.admin.user}:{spec.admin.password}",
        "replication-credential": f"{spec.replication.user}:{spec.replication.password}",
    }
    keys = watcher_passthrough_keys()
    for name, value in spec.watcher_settings.items():
        if (keys[name].secret or keys[name].kind == "credential") and not _is_reference(value):
            out[name] = str(value)
    return out


def preferred_master(spec: ClusterSpec, servers: list[str]) -> str:
    """repman's comma-separated list, node indexes resolved to the deployed servers."""
    def one(pm: int | ServerAddress | None) -> str:
        if isinstance(pm, ServerAddress):
            return pm.url
        index = pm if isinstance(pm, int) else 1
        return servers[index - 1] if 0 < index <= len(servers) else ""
    entries: list[int | ServerAddress | None] = list(spec.preferred_masters) or [spec.preferred_master]
    return ",".join(dict.fromkeys(u for u in (one(pm) for pm in entries) if u))


def render_watcher_config(
    spec: ClusterSpec, servers: list[str], secret_ref: SecretRef, *,
    routing: Mapping[str, Any] | None = None, state_dir: str = "",
) -> dict[str, Any]:
    """The YAML document (as data) of one cluster's watcher."""
    section: dict[str, Any] = {
        "db-servers-hosts": list(servers),
        "db-servers-credential": secret_ref("db-servers-credential"),
        "replication-credential": secret_ref("replication-credential"),
        "db-servers-prefered-master": preferred_master(spec, servers),
        "semisync": spec.semisync,
    }
    if state_dir:
        section["monitoring-datadir"] = state_dir
    section.update(dict(routing or {}))
    if "readonmaster" in spec.proxy_tags:        # repman's proxy tag
        section.setdefault("haproxy-read-on-master", True)
    keys = watcher_passthrough_keys()
    for name, value in spec.watcher_settings.items():
        if keys[name].secret or keys[name].kind == "credential":
            section[name] = value if _is_reference(value) else secret_ref(name)
        else:
            section[name] = _plain(coerce(keys[name], value))
    doc: dict[str, Any] = {"clusters": {spec.name: section}}
    if spec.api_settings:
        doc["api"] = {name: _plain(coerce(API_KEYS[name], value)) for name, value in spec.api_settings.items()}
    return doc


def _plain(value: Any) -> Any:
    """A validated value as YAML data (addresses back to host:port text)."""
    if isinstance(value, ServerAddress):
        return value.url
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _integral(value: Any) -> Any:
    """Numbers that crossed Pulumi's wire come back as floats: 3306.0 -> 3306."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_integral(v) for v in value]
    return value


def dump(doc: Mapping[str, Any]) -> str:
    header = "# repman watcher config, rendered by the provisioner: edit the stack, not this file.\n"
    # Sorted: values that crossed Pulumi's wire come back in no particular key order.
    return header + yaml.safe_dump(_integral(dict(doc)), sort_keys=True, default_flow_style=False)


def write_secret_files(secrets_dir: Path, secrets: Mapping[str, str]) -> bool:
    """One 0600 file per secret; returns True when any content changed."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    changed = False
    for name, value in secrets.items():
        path = secrets_dir / name
        if path.exists() and path.read_text() == value:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        os.chmod(path, 0o600)
        changed = True
    return changed

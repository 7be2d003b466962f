"""The watcher file's top-level ``ha:`` section -> ``HaSettings`` (or None: one watcher alone).

Checked before anything connects, each mistake one ``ConfigError`` naming ``ha.<key>``: a
watcher started with a wrong prefix or TTL would share nothing with its peers, or act while
another also acts.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from repman.errors import ConfigError
from repman.keys import validate_section
from repman.watcher.ha.keys import HA_KEYS


@dataclass(frozen=True)
class HaSettings:
    endpoints: tuple[str, ...]
    prefix: str = "/repman"
    lease_ttl: int = 10
    watcher_name: str = ""
    failover_quorum: int = 1
    timeout: float = 1.0
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    user: str = ""
    password: str = field(default="", repr=False)

    def key(self, cluster: str, leaf: str) -> bytes:
        """``<prefix>/<cluster>/<leaf>`` as etcd key bytes."""
        return f"{self.prefix.rstrip('/')}/{cluster}/{leaf}".encode()


def load_ha(raw: Any) -> HaSettings | None:
    """Validate an ``ha:`` section; None when absent or without endpoints (the watcher runs alone)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError("ha", f"expected a mapping of ha-* keys, got {raw!r}")
    values = validate_section(raw, (HA_KEYS,), where="ha")
    endpoints = tuple(f"{a.host}:{a.port}" if ":" not in a.host else f"[{a.host}]:{a.port}"
                      for a in values["ha-etcd-endpoints"])
    if not endpoints:
        if any(k != "ha-etcd-endpoints" for k in raw):
            raise ConfigError("ha.ha-etcd-endpoints", "is required when other ha-* keys are set")
        return None
    prefix = values["ha-etcd-prefix"]
    if not prefix.startswith("/") or "//" in prefix or len(prefix) < 2:
        raise ConfigError("ha.ha-etcd-prefix", f"{prefix!r} must start with '/' and name a path (e.g. /repman)")
    name = values["ha-watcher-name"] or socket.gethostname()
    if not name.isprintable() or "/" in name or not name.strip():
        raise ConfigError("ha.ha-watcher-name", f"{name!r} must be printable, without '/'")
    ttl = values["ha-lease-ttl"]
    if bool(values["ha-etcd-tls-cert"]) != bool(values["ha-etcd-tls-key"]):
        raise ConfigError("ha.ha-etcd-tls-key" if values["ha-etcd-tls-cert"] else "ha.ha-etcd-tls-cert",
                          "ha-etcd-tls-cert and ha-etcd-tls-key go together")
    if values["ha-etcd-tls-cert"] and not values["ha-etcd-tls-ca"]:
        raise ConfigError("ha.ha-etcd-tls-ca", "a client certificate needs the CA of etcd's certificate")
    for key in ("ha-etcd-tls-ca", "ha-etcd-tls-cert", "ha-etcd-tls-key"):
        if values[key] and not Path(values[key]).is_file():
            raise ConfigError(f"ha.{key}", f"{values[key]!r} is not a readable file")
    if bool(values["ha-etcd-user"]) != bool(values["ha-etcd-password"]):
        raise ConfigError("ha.ha-etcd-password" if values["ha-etcd-user"] else "ha.ha-etcd-user",
                          "ha-etcd-user and ha-etcd-password go together")
    return HaSettings(endpoints, prefix.rstrip("/"), ttl, name, values["ha-failover-quorum"],
                      values["ha-etcd-timeout"], values["ha-etcd-tls-ca"], values["ha-etcd-tls-cert"],
                      values["ha-etcd-tls-key"], values["ha-etcd-user"], values["ha-etcd-password"])

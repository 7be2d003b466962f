"""Read a routing key from a ``ClusterConfig``, falling back to the key table's default.

Routers may be built from a config validated before ``ROUTING_KEYS`` was merged in
(or from a plain dict in tests); the default then comes from the one schema.
"""

from __future__ import annotations

from typing import Any

from repman.routing.keys import ROUTING_KEYS


def setting(cfg: Any, key: str) -> Any:
    getter = getattr(cfg, "get", None)
    value = getter(key) if getter else None
    if value is None and key in ROUTING_KEYS:
        return ROUTING_KEYS[key].default
    return value


def cluster_name(cfg: Any) -> str:
    return str(getattr(cfg, "name", None) or (cfg.get("name") if hasattr(cfg, "get") else "") or "cluster")

"""The cluster name routers put into their service and server names.

Routers read their keys through the config's typed accessors (``cfg.flag("haproxy")``),
which take each default from ``ROUTING_KEYS``; only the name is not a key.
"""

from __future__ import annotations

from typing import Any


def cluster_name(cfg: Any) -> str:
    return str(getattr(cfg, "name", None) or (cfg.get("name") if hasattr(cfg, "get") else "") or "cluster")

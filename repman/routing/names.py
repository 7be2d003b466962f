"""Stable names for servers inside proxies, shared by templates, routers and scripts.

A proxy's config is rendered once (at provisioning) and then driven at run time;
both sides must agree on each server's name without talking to each other.
"""

from __future__ import annotations

import re

from repman.db import ServerAddress


def server_name(address: ServerAddress) -> str:
    """``db_127_0_0_1_3306``: unique per host:port, safe in HAProxy/ProxySQL/MaxScale/Consul ids."""
    host = re.sub(r"[^A-Za-z0-9]+", "_", address.host).strip("_")
    return f"db_{host}_{address.port}"


def sql_identifier(name: str, key: str = "name") -> str:
    """Reject names that would need quoting in an SQL identifier position."""
    from repman.errors import ConfigError

    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
        raise ConfigError(key, f"{name!r} must be 1-64 letters, digits or underscores")
    return name


def haproxy_server_name(address: ServerAddress) -> str:
    """``127.0.0.1:3306`` (HAProxy allows ':' in names), so ``%[srv_name]`` in an HTTP check
    names the server the way the watcher's ``/primary?server=`` expects; IPv6 falls back."""
    if ":" in address.host:
        return server_name(address)
    return address.url

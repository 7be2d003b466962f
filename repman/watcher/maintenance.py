"""Maintenance of one server, set by an operator (CLI or API) and kept in the state store.

A server in maintenance is never elected, never rejoined, not offered for reads and
shown as ``Maintenance``; a master in maintenance keeps its writes but is not failed
over while it does not answer (the operator is restarting it). Being in the state
store, the flag reaches a running watcher at its next tick and survives restarts.
"""

from __future__ import annotations

from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.watcher.checks import member
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.state_store import StateStore


def set_maintenance(cfg: ClusterConfig, store: StateStore, server: str | ServerAddress, on: bool,
                    key: str = "HOST:PORT") -> tuple[ServerAddress, str]:
    """Switch maintenance of ``server``; returns (the server, a sentence). Unknown server: ConfigError."""
    addr = server if isinstance(server, ServerAddress) else ServerAddress.parse(server, key)
    target = member(cfg, addr)
    if target is None:
        raise ConfigError(key, f"{addr.url} is not a server of cluster {cfg.name} "
                               f"({', '.join(a.url for a in cfg.servers)})")
    changed = store.set_maintenance(target.url, on)
    if on:
        sentence = (f"{target.url} is {'now' if changed else 'already'} in maintenance in cluster {cfg.name}: "
                    "not elected, not rejoined, no reads; a master in maintenance is not failed over")
    else:
        sentence = (f"{target.url} is {'back' if changed else 'already'} out of maintenance "
                    f"in cluster {cfg.name}")
    return target, sentence

"""A cluster spec and the local watcher provider's properties, shared by the watcher and provider-host tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repman.local.watcher import WatcherFiles
from repman.spec import load_cluster_spec
from repman.watcher_yaml import file_ref, render_watcher_config, secret_values

SPEC = {
    "repman:db-servers-credential": "repman:w-admin-pw",
    "repman:replication-credential": "repl:w-repl-pw",
    "repman:proxysql-password": "w-proxysql-pw",
    "repman:failover-mode": "automatic",
    "repman:db-servers-prefered-master": "2",
    "repman:prov-db-tags": ["row", "semisync"],
}


def watcher_props(base: Path, servers: list[str], api_port: int) -> dict[str, Any]:
    """LocalWatcherProvider properties for ``servers``, as the program would pass them."""
    spec = load_cluster_spec(SPEC | {"repman:api-port": str(api_port)})
    files = WatcherFiles(base)
    return {
        "base_dir": str(base), "cluster": "cluster1",
        "config": render_watcher_config(spec, servers, file_ref(files.secrets_dir), state_dir=str(files.state_dir)),
        "secrets": secret_values(spec), "api": {"api-port": api_port}, "provider_version": "1",
    }

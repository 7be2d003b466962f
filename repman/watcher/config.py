"""The watcher's YAML file -> validated clusters (the ``api:`` section is ``repman.api.config``'s,
the ``ha:`` section ``repman.watcher.ha.settings``').

Every mistake is reported as one ``ConfigError`` naming ``clusters.<name>.<key>``
and the value, before anything connects to a server: a watcher that starts with
a typo in ``failover-mode`` would silently never fail over.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from repman.backup.keys import BACKUP_KEYS
from repman.backup.settings import check_backup_section
from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.keys import Key, validate_section
from repman.routing.keys import ROUTING_KEYS
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server
from repman.watcher.ha.settings import HaSettings, load_ha
from repman.watcher.keys import WATCHER_KEYS

CLUSTER_TABLES: tuple[Mapping[str, Key], ...] = (WATCHER_KEYS, ROUTING_KEYS, BACKUP_KEYS)
REQUIRED = ("db-servers-hosts", "db-servers-credential", "replication-credential")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HAPROXY_HOST = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]*:[0-9a-fA-F:.]+|[A-Za-z0-9_.-]+)$")


@dataclass
class WatcherConfig:
    path: Path
    clusters: dict[str, ClusterConfig]
    # The top-level ``api:`` section as read: the API layer validates it (``repman.api.config``).
    api_section: Any = None
    # The top-level ``ha:`` section (etcd leadership); None: this watcher runs alone and acts.
    ha: HaSettings | None = None

    def cluster(self, name: str | None = None) -> ClusterConfig:
        """The named cluster, or the only one when no name is given."""
        if name is None:
            if len(self.clusters) == 1:
                return next(iter(self.clusters.values()))
            raise ConfigError("--cluster", f"the file has {len(self.clusters)} clusters "
                              f"({', '.join(self.clusters)}): name one")
        if name not in self.clusters:
            raise ConfigError("--cluster", f"no cluster {name!r} in {self.path} "
                              f"(clusters: {', '.join(self.clusters)})")
        return self.clusters[name]


def all_cluster_keys() -> dict[str, Key]:
    out: dict[str, Key] = {}
    for table in CLUSTER_TABLES:
        out.update(table)
    return out


def _cross_checks(name: str, values: dict[str, Any]) -> None:
    where = f"clusters.{name}"
    hosts = values["db-servers-hosts"]
    preferred_list = values.get("db-servers-prefered-master") or []
    for preferred in preferred_list:
        if not any(same_server(preferred, h) for h in hosts):
            raise ConfigError(f"{where}.db-servers-prefered-master",
                              f"{preferred.url} is not in db-servers-hosts")
    for ignored in values.get("db-servers-ignored-hosts") or []:
        if not any(same_server(ignored, h) for h in hosts):
            raise ConfigError(f"{where}.db-servers-ignored-hosts", f"{ignored.url} is not in db-servers-hosts")
        if any(same_server(ignored, p) for p in preferred_list):
            raise ConfigError(f"{where}.db-servers-ignored-hosts",
                              f"{ignored.url} is also db-servers-prefered-master")
    for host in values.get("haproxy-servers") or []:
        if "/" in host or not _HAPROXY_HOST.match(host):
            raise ConfigError(f"{where}.haproxy-servers",
                              f"{host!r} is not a host name or address (haproxy-servers holds hosts as in "
                              "repman; a socket path or host:port goes into haproxy-runtime-api-servers)")
    if values.get("switchover-wait-route-change") and values.get("switchover-wait-route-change-ms"):
        raise ConfigError(f"{where}.switchover-wait-route-change-ms",
                          "set either switchover-wait-route-change (seconds) or this key (milliseconds)")
    for entry in values.get("failover-fence-pid-files") or []:
        hostport, _, pid_file = str(entry).partition("=")
        try:
            fenced = ServerAddress.parse(hostport.strip(), "failover-fence-pid-files")
        except ConfigError:
            fenced = None
        if fenced is None or not pid_file.strip() or not any(same_server(fenced, h) for h in hosts):
            raise ConfigError(f"{where}.failover-fence-pid-files",
                              f"{entry!r} is not host:port=/path/to/pid-file of a db-servers-hosts server")
    for script_key in ("failover-pre-script", "failover-post-script", "alert-script",
                       "db-servers-state-change-script", "failover-fence-script"):
        script = values.get(script_key)
        if script and not Path(script).is_file():
            raise ConfigError(f"{where}.{script_key}", f"{script!r} is not a file")


def _shown(key: Any, value: Any) -> str:
    """A value as it may appear in an error: anything that looks secret is masked."""
    if any(w in str(key) for w in ("password", "credential", "token", "pass")):
        return "'***'"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_cluster(name: Any, raw: Any) -> ClusterConfig:
    """Validate one ``clusters.<name>`` section."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"clusters.{name}", "a cluster name is letters, digits, '.', '_' or '-'")
    where = f"clusters.{name}"
    if raw is None:
        raise ConfigError(where, "empty section: db-servers-hosts is required")
    if isinstance(raw, Mapping):
        known = all_cluster_keys()
        for key, value in raw.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigError(f"{where}.{key}", f"unknown key (value {_shown(key, value)}){hint}")
    values = validate_section(raw, CLUSTER_TABLES, where=where, required=REQUIRED)
    _cross_checks(name, values)
    check_backup_section(where, values)
    ca = values.get("db-servers-tls-ca-cert") or ""
    if ca and not Path(ca).is_file():
        raise ConfigError(f"{where}.db-servers-tls-ca-cert", f"{ca!r} is not a readable file")
    from repman.db_tls import register
    register(values["db-servers-hosts"], ca)
    files = {k: str(v["file"]) for k, v in raw.items()
             if k == "replication-credential" and isinstance(v, Mapping) and set(v) == {"file"}}
    return ClusterConfig(name, values, secret_files=files)


def parse_config(raw: Any, path: Path | str = "<config>") -> WatcherConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(str(path), "expected a mapping with a 'clusters' section")
    for top in raw:
        if top not in ("clusters", "api", "ha"):
            raise ConfigError(str(top), "unknown top-level section (expected clusters, api, ha)")
    clusters_raw = raw.get("clusters")
    if not isinstance(clusters_raw, Mapping) or not clusters_raw:
        raise ConfigError("clusters", f"expected at least one cluster section, got {clusters_raw!r}")
    clusters = {str(name): load_cluster(name, section) for name, section in clusters_raw.items()}
    return WatcherConfig(Path(path), clusters, raw.get("api"), load_ha(raw.get("ha")))


def load_config(path: str | Path) -> WatcherConfig:
    """Read and validate the watcher's YAML file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(str(p), f"invalid YAML{where}: {problem}") from None
    return parse_config(raw, p)

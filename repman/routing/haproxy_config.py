"""HAProxy configuration for one cluster, rendered from ``templates/proxy/haproxy.cfg.j2``.

The file only has to be right at start: afterwards the watcher moves the ``leader``
server and drains replicas through the runtime API, and ``server-state-file`` keeps
that runtime state across a reload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.paths import templates_dir
from repman.routing.names import haproxy_server_name
from repman.tags import DEFAULT_PROXY_TAGS, validate_proxy_tags

CHECK_MODES = ("tcp", "http")
BALANCES = ("leastconn", "roundrobin", "first", "source")


@dataclass(frozen=True)
class HAProxyConfig:
    """Everything the template needs; ``validate`` names the offending field on bad input."""

    cluster: str
    servers: tuple[ServerAddress, ...]
    stats_socket: str
    state_file: str
    primary: ServerAddress | None = None
    write_port: int = 3306
    read_port: int = 3307
    bind_address: str = "0.0.0.0"
    tags: tuple[str, ...] = DEFAULT_PROXY_TAGS
    write_backend: str = "service_write"
    read_backend: str = "service_read"
    stats_tcp: ServerAddress | None = None        # also expose the runtime API over TCP
    check: str = "tcp"                            # "http": ask the watcher's /primary and /replica
    watcher: ServerAddress | None = None          # the watcher's HTTP API, for check == "http"
    primary_uri: str = "/primary?cluster={cluster}&server=%[srv_name]"
    replica_uri: str = "/replica?cluster={cluster}&server=%[srv_name]"
    balance: str = "leastconn"
    maxconn: int = 4096
    nbthread: int = 0                             # 0: HAProxy's default (one per core)
    check_inter: str = "1s"
    check_fall: int = 2
    check_rise: int = 1
    timeout_connect: str = "3s"
    timeout_client: str = "8h"
    timeout_server: str = "8h"
    timeout_check: str = "2s"
    hard_stop_after: str = "30s"                  # an old process left by a reload ends by then
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_]+", "_", self.cluster)

    @property
    def read_split(self) -> bool:
        return "noreadwritesplit" not in self.tags

    def validate(self) -> HAProxyConfig:
        validate_proxy_tags(self.tags)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.cluster):
            raise ConfigError("cluster", f"name {self.cluster!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if not self.servers:
            raise ConfigError("db-servers-hosts", "HAProxy needs at least one database server")
        for key, port in (("haproxy-write-port", self.write_port), ("haproxy-read-port", self.read_port)):
            if not 1 <= int(port) <= 65535:
                raise ConfigError(key, f"port {port} out of range")
        if self.read_split and self.write_port == self.read_port:
            raise ConfigError("haproxy-read-port", "must differ from haproxy-write-port")
        if self.check not in CHECK_MODES:
            raise ConfigError("haproxy-check", f"{self.check!r} is not one of {', '.join(CHECK_MODES)}")
        if self.check == "http" and self.watcher is None:
            raise ConfigError("haproxy-check", "http checks need the watcher's API address")
        if self.balance not in BALANCES:
            raise ConfigError("haproxy-balance", f"{self.balance!r} is not one of {', '.join(BALANCES)}")
        for name in (self.write_backend, self.read_backend):
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ConfigError("haproxy-api-write-backend", f"bad backend name {name!r}")
        return self


def render_haproxy_config(conf: HAProxyConfig) -> str:
    """The complete haproxy.cfg text for ``conf`` (validated first)."""
    conf.validate()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates_dir()) / "proxy")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    leader = conf.primary or conf.servers[0]
    read_servers = [
        # tcp checks: the primary starts out of the read pool until the watcher says otherwise;
        # http checks decide by themselves, so nothing is disabled for good.
        {"name": haproxy_server_name(s), "address": s.url, "disabled": s == conf.primary and conf.check != "http"}
        for s in conf.servers
    ]
    # http checks: HAProxy 2.6 starts servers UP until a check fails, so the known primary
    # comes first and `balance first` sends writes to it during that first check interval.
    ordered = sorted(conf.servers, key=lambda s: s != conf.primary)
    write_servers = [{"name": haproxy_server_name(s), "address": s.url, "disabled": False} for s in ordered]
    text = env.get_template("haproxy.cfg.j2").render(
        cluster=conf.cluster, tags=list(conf.tags), ssl="ssl" in conf.tags,
        maxconn=conf.maxconn, nbthread=conf.nbthread,
        stats_socket=conf.stats_socket, stats_tcp=conf.stats_tcp.url if conf.stats_tcp else "",
        state_file=conf.state_file, hard_stop_after=conf.hard_stop_after,
        timeout_connect=conf.timeout_connect, timeout_client=conf.timeout_client,
        timeout_server=conf.timeout_server, timeout_check=conf.timeout_check,
        check_inter=conf.check_inter, check_fall=conf.check_fall, check_rise=conf.check_rise,
        write_frontend="write_" + conf.cluster_id, read_frontend="read_" + conf.cluster_id,
        write_backend=conf.write_backend, read_backend=conf.read_backend,
        bind_address=conf.bind_address, write_port=conf.write_port, read_port=conf.read_port,
        leader=leader.url, read_split=conf.read_split, read_servers=read_servers, write_servers=write_servers,
        balance=conf.balance,
        check=conf.check,
        watcher_host=conf.watcher.host if conf.watcher else "", watcher_port=conf.watcher.port if conf.watcher else 0,
        primary_uri=conf.primary_uri.replace("{cluster}", conf.cluster),
        replica_uri=conf.replica_uri.replace("{cluster}", conf.cluster),
    )
    return text + ("" if text.endswith("\n") else "\n")

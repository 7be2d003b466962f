"""ProxySQL's proxysql.cnf (libconfig) for one cluster, from ``templates/proxy/proxysql.cnf.j2``.

It seeds the first start; afterwards the watcher owns the hostgroups at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.paths import templates_dir
from repman.tags import DEFAULT_PROXY_TAGS, validate_proxy_tags


def libconfig_string(value: object) -> str:
    """A libconfig string literal: double quotes, backslash escapes."""
    text = str(value)
    if any(ord(c) < 0x20 for c in text):
        raise ConfigError("proxysql", f"control character in {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ProxySQLConfig:
    cluster: str
    servers: tuple[ServerAddress, ...]
    primary: ServerAddress | None
    admin: Credential
    monitor: Credential
    tags: tuple[str, ...] = DEFAULT_PROXY_TAGS
    datadir: str = "/var/lib/proxysql"
    admin_port: int = 6032
    client_port: int = 6033
    bind_address: str = "0.0.0.0"
    writer_hostgroup: int = 0
    reader_hostgroup: int = 1
    threads: int = 2
    max_connections: int = 2048
    server_version: str = "10.11.0-MariaDB"


def render_proxysql_config(conf: ProxySQLConfig) -> str:
    validate_proxy_tags(conf.tags)
    if conf.writer_hostgroup == conf.reader_hostgroup:
        raise ConfigError("proxysql-reader-hostgroup", "must differ from proxysql-writer-hostgroup")
    if conf.admin_port == conf.client_port:
        raise ConfigError("proxysql-port", "must differ from proxysql-admin-port")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates_dir()) / "proxy")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    env.filters["q"] = libconfig_string
    servers = []
    for s in conf.servers:
        if s == conf.primary:
            servers.append({"host": s.host, "port": s.port, "hostgroup": conf.writer_hostgroup, "status": "ONLINE"})
        else:
            servers.append({"host": s.host, "port": s.port, "hostgroup": conf.reader_hostgroup, "status": "ONLINE"})
    return env.get_template("proxysql.cnf.j2").render(
        cluster=conf.cluster, tags=list(conf.tags), ssl="ssl" in conf.tags,
        read_split="noreadwritesplit" not in conf.tags, datadir=conf.datadir,
        admin_credentials=f"{conf.admin.user}:{conf.admin.password}",
        admin_iface=f"{conf.bind_address}:{conf.admin_port}", client_iface=f"{conf.bind_address}:{conf.client_port}",
        threads=conf.threads, max_connections=conf.max_connections, server_version=conf.server_version,
        monitor_user=conf.monitor.user, monitor_password=conf.monitor.password, servers=servers,
        writer_hostgroup=conf.writer_hostgroup, reader_hostgroup=conf.reader_hostgroup,
        comment=f"repman {conf.cluster}",
    )

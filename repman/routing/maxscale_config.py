"""maxscale.cnf for one cluster, from ``templates/proxy/maxscale.cnf.j2``.

MaxScale's INI has no quoting, so values that could break a line or a section are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.paths import templates_dir
from repman.routing.names import server_name
from repman.tags import DEFAULT_PROXY_TAGS, validate_proxy_tags


def _ini_value(key: str, value: str) -> str:
    if re.search(r"[\r\n\[\]#;]", value) or value != value.strip():
        raise ConfigError(key, "must not contain line breaks, brackets, '#', ';' or edge spaces")
    return value


@dataclass(frozen=True)
class MaxScaleConfig:
    cluster: str
    servers: tuple[ServerAddress, ...]
    service: Credential                    # MaxScale reads users/grants with it
    monitor: Credential | None = None      # needed with monitor_follow
    monitor_follow: bool = False
    monitor_name: str = "MariaDB-Monitor"
    tags: tuple[str, ...] = DEFAULT_PROXY_TAGS
    admin_host: str = "127.0.0.1"
    admin_port: int = 8989
    bind_address: str = "0.0.0.0"
    write_port: int = 4007
    read_port: int = 4008
    threads: str = "auto"


def render_maxscale_config(conf: MaxScaleConfig) -> str:
    validate_proxy_tags(conf.tags)
    if not conf.servers:
        raise ConfigError("db-servers-hosts", "MaxScale needs at least one database server")
    if conf.monitor_follow and conf.monitor is None:
        raise ConfigError("maxscale-monitor-follow", "a monitor needs a monitoring credential")
    if "noreadwritesplit" not in conf.tags and conf.write_port == conf.read_port:
        raise ConfigError("maxscale-read-port", "must differ from maxscale-write-port")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", conf.monitor_name):
        raise ConfigError("maxscale-monitor-name", f"{conf.monitor_name!r}: letters, digits, '_' or '-' only")
    for key, cred in (("db-servers-credential", conf.service), ("monitoring-credential", conf.monitor)):
        if cred is not None:
            _ini_value(key, cred.user)
            _ini_value(key, cred.password)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates_dir()) / "proxy")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    names = [server_name(s) for s in conf.servers]
    servers = [{"name": name, "host": s.host, "port": s.port} for name, s in zip(names, conf.servers)]
    return env.get_template("maxscale.cnf.j2").render(
        cluster=conf.cluster, tags=list(conf.tags), ssl="ssl" in conf.tags,
        read_split="noreadwritesplit" not in conf.tags, monitor_follow=conf.monitor_follow,
        monitor_name=conf.monitor_name, threads=conf.threads, admin_host=conf.admin_host,
        admin_port=conf.admin_port, servers=servers, server_names=",".join(names),
        monitor_user=conf.monitor.user if conf.monitor else "",
        monitor_password=conf.monitor.password if conf.monitor else "",
        service_user=conf.service.user, service_password=conf.service.password,
        bind_address=conf.bind_address, write_port=conf.write_port, read_port=conf.read_port,
    )

"""Dynamic provider of one local HAProxy in front of a cluster (``repman.routing`` does the work).

create: render haproxy.cfg, let haproxy validate it, start a detached process (pid file).
diff:   a new base_dir replaces; any input change, a config on disk that renders
        differently, or a dead process is an update.
update: rewrite the config and reload seamlessly only when the text changed (the runtime
        routing set by the watcher survives through the server-state file); start it
        when it is not running.
delete: stop the process and any predecessor still draining a reload.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.providers.observed import KEY as OBSERVED, drift, observed
from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource, read_live
from repman.db import ServerAddress
from repman.local.haproxy_process import HAProxyFiles, read_pid, reload, start, stop, write_config
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
from repman.tags import DEFAULT_PROXY_TAGS


def haproxy_config(props: dict[str, Any]) -> tuple[HAProxyFiles, HAProxyConfig]:
    files = HAProxyFiles(Path(str(props["base_dir"])))
    primary = props.get("primary") or ""
    watcher = props.get("watcher") or ""
    conf = HAProxyConfig(
        cluster=str(props["cluster"]),
        servers=tuple(ServerAddress.parse(s, "servers") for s in props["servers"]),
        primary=ServerAddress.parse(primary, "primary") if primary else None,
        stats_socket=str(files.socket), state_file=str(files.state_file),
        write_port=int(props["write_port"]), read_port=int(props["read_port"]),
        bind_address=str(props.get("bind_address") or "127.0.0.1"),
        tags=tuple(props.get("tags") or DEFAULT_PROXY_TAGS),
        nbthread=int(props.get("nbthread") or 0), check=str(props.get("check") or "tcp"),
        watcher=ServerAddress.parse(watcher, "watcher") if watcher else None,
    )
    return files, conf


def _outs(props: dict[str, Any], files: HAProxyFiles, conf: HAProxyConfig, pid: int, instance: str) -> dict:
    return {
        **props,
        "pid": pid,
        "admin_socket": str(files.socket),
        "config_path": str(files.config),
        "write_address": ServerAddress(conf.bind_address, conf.write_port).url,
        "read_address": ServerAddress(conf.bind_address, conf.read_port).url if conf.read_split else "",
        "instance": instance,
        OBSERVED: observed(bool(pid), render_haproxy_config(conf)),
    }


def _ensure(props: dict[str, Any]) -> tuple[HAProxyFiles, HAProxyConfig, int]:
    """Config written and a process running it; reload only when the text changed."""
    files, conf = haproxy_config(props)
    changed = write_config(files, render_haproxy_config(conf))
    running = read_pid(files)
    if running is None:
        pid = start(files)
    elif changed:
        pid = reload(files)
    else:
        pid = running
    return files, conf, pid


class LocalHAProxyProvider(ScaffoldProvider):
    replace_keys = ("base_dir",)
    input_keys = (
        "base_dir", "cluster", "servers", "primary", "write_port", "read_port", "bind_address", "tags",
        "nbthread", "check", "watcher", "provider_version",
    )
    output_keys = ("pid", "admin_socket", "config_path", "write_address", "read_address", "instance", "observed")

    def create(self, props: dict[str, Any]) -> CreateResult:
        files, conf, pid = _ensure(props)
        instance = f"haproxy:{files.base}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=_outs(props, files, conf, pid, instance))

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        return drift(olds, render_haproxy_config(haproxy_config(news)[1]))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        files, conf, pid = _ensure(news)
        return UpdateResult(outs=_outs(news, files, conf, pid, str(olds.get("instance") or _id)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live proxy: its process and the config on disk (gone: neither)."""
        files = HAProxyFiles(Path(str(props["base_dir"])))
        return read_live(id_, props, read_pid(files), files.config)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stop(HAProxyFiles(Path(str(props["base_dir"]))))


@dataclass(kw_only=True)
class LocalHAProxyArgs(ResourceInputs):
    """Inputs of one local HAProxy; ``servers`` are host:port strings (Outputs allowed)."""

    base_dir: pulumi.Input[str]
    cluster: pulumi.Input[str]
    servers: pulumi.Input[Sequence[str]]
    write_port: pulumi.Input[int]
    read_port: pulumi.Input[int]
    primary: pulumi.Input[str] = ""
    bind_address: pulumi.Input[str] = "127.0.0.1"
    tags: pulumi.Input[Sequence[str]] = DEFAULT_PROXY_TAGS
    nbthread: pulumi.Input[int] = 0
    check: pulumi.Input[str] = "tcp"
    watcher: pulumi.Input[str] = ""

    def __post_init__(self) -> None:
        self.tags = list(self.tags) if isinstance(self.tags, tuple) else self.tags


class LocalHAProxy(ScaffoldResource, module="repman", name="LocalHAProxy"):
    """A real haproxy process on this host, detached so it outlives the deployment."""

    pid: pulumi.Output[int]
    admin_socket: pulumi.Output[str]
    config_path: pulumi.Output[str]
    write_address: pulumi.Output[str]
    read_address: pulumi.Output[str]
    instance: pulumi.Output[str]

    provider_class = LocalHAProxyProvider
    secret_outputs = ()
    replace_after_delete = True


# ---- A local MariaDB Spider node as a routing layer ---------------------------------------


def _spider_node(props: dict[str, Any], password: str = ""):
    from repman.local.node import LocalNodeSpec

    return LocalNodeSpec(
        base_dir=str(props["base_dir"]), server_id=int(props["server_id"]), port=int(props["port"]),
        plan=str(props["plan"]), tags=[], host=str(props["host"]), admin_user=str(props["admin_user"]),
        admin_password=password,
    )


def _point_spider(props: dict[str, Any]) -> None:
    """Install the engine (idempotent) and point the server definition at the primary."""
    from repman.db import Credential, session
    from repman.routing.base import Topology
    from repman.routing.spider import SpiderRouter, ensure_spider

    node = ServerAddress(str(props["host"]), int(props["port"]))
    admin = Credential(str(props["admin_user"]), str(props["admin_password"]))
    with session(node, admin, timeout=5) as conn:
        ensure_spider(conn)
    if props.get("primary"):
        remote = Credential(str(props["remote_user"]), str(props["remote_password"]))
        router = SpiderRouter(node, admin, remote, str(props["server_name"]), str(props.get("database") or ""),
                              timeout=5.0)
        router.apply(Topology(str(props["server_name"]), ServerAddress.parse(str(props["primary"]), "primary")))


class LocalSpiderProvider(ScaffoldProvider):
    """create: a local mariadbd with ha_spider and the server definition; update: re-point or
    restart; delete: stop and remove the node (it holds no data of its own)."""

    secret_keys = ("admin_password", "remote_password")
    replace_keys = ("base_dir", "server_id")
    input_keys = (
        "base_dir", "server_id", "port", "host", "plan", "admin_user", "remote_user", "primary",
        "server_name", "database", "provider_version",
    )
    output_keys = ("pid", "address", "instance", "secret_digest")

    def _outs(self, props: dict[str, Any], instance: str, digest: str | None = None) -> dict[str, Any]:
        from repman.local.mariadb import read_pid as node_pid

        spec = _spider_node(props)
        return {**self.public_outputs(props, digest), "pid": node_pid(spec.paths) or 0,
                "address": f"{spec.host}:{spec.port}", "instance": instance}

    def create(self, props: dict[str, Any]) -> CreateResult:
        from repman.local.node import create_node

        create_node(_spider_node(props, str(props["admin_password"])))
        _point_spider(props)
        instance = f"spider:{props['host']}:{props['port']}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=self._outs(props, instance))

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        from repman.local.node import node_running

        return [] if node_running(_spider_node(news)) else ["pid"]

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from repman.local.node import update_node

        password = str(news["admin_password"])
        update_node(_spider_node(olds, password), _spider_node(news, password))
        _point_spider(news)
        return UpdateResult(outs=self._outs(news, str(olds.get("instance") or _id)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from repman.local.node import delete_node

        delete_node(_spider_node(props), keep_data=False)


class LocalSpider(ScaffoldResource, module="repman", name="LocalSpider"):
    """A real mariadbd with the Spider engine whose server definition follows the primary."""

    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    pid: pulumi.Output[int]

    provider_class = LocalSpiderProvider
    replace_after_delete = True

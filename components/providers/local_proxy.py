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
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from repman.db import ServerAddress
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
from repman.tags import DEFAULT_PROXY_TAGS
from repman.routing.haproxy_process import HAProxyFiles, read_pid, reload, start, stop, write_config

from components.providers.observed import KEY as OBSERVED, drift, observed
from components.providers.secret_digest import has_unknowns

PROVIDER_VERSION = "1"
REPLACE_KEYS = ("base_dir",)
INPUT_KEYS = (
    "base_dir", "cluster", "servers", "primary", "write_port", "read_port", "bind_address", "tags",
    "nbthread", "check", "watcher", "provider_version",
)
OUTPUT_KEYS = ("pid", "admin_socket", "config_path", "write_address", "read_address", "instance", "observed")


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


class LocalHAProxyProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        files, conf, pid = _ensure(props)
        instance = f"haproxy:{files.base}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=_outs(props, files, conf, pid, instance))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        if has_unknowns(news):
            changed.append("unknown")
        elif not changed and not replaces:
            changed += drift(olds, render_haproxy_config(haproxy_config(news)[1]))
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, stables=["instance"],
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        files, conf, pid = _ensure(news)
        return UpdateResult(outs=_outs(news, files, conf, pid, str(olds.get("instance") or _id)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live proxy: its process and the config on disk (gone: neither)."""
        files = HAProxyFiles(Path(str(props["base_dir"])))
        pid = read_pid(files)
        if pid is None and not files.config.exists():
            return ReadResult(id_="", outs={})
        text = files.config.read_text() if files.config.exists() else None
        return ReadResult(id_=id_, outs={**props, "pid": pid or 0, OBSERVED: observed(pid is not None, text)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stop(HAProxyFiles(Path(str(props["base_dir"]))))


class LocalHAProxyArgs:
    """Inputs of one local HAProxy; ``servers`` are host:port strings (Outputs allowed)."""

    def __init__(
        self, *, base_dir: pulumi.Input[str], cluster: pulumi.Input[str], servers: pulumi.Input[list[str]],
        write_port: pulumi.Input[int], read_port: pulumi.Input[int], primary: pulumi.Input[str] = "",
        bind_address: pulumi.Input[str] = "127.0.0.1", tags: pulumi.Input[list[str]] = DEFAULT_PROXY_TAGS,
        nbthread: pulumi.Input[int] = 0, check: pulumi.Input[str] = "tcp", watcher: pulumi.Input[str] = "",
    ) -> None:
        self.base_dir = base_dir
        self.cluster = cluster
        self.servers = servers
        self.write_port = write_port
        self.read_port = read_port
        self.primary = primary
        self.bind_address = bind_address
        self.tags = list(tags) if isinstance(tags, tuple) else tags
        self.nbthread = nbthread
        self.check = check
        self.watcher = watcher


class LocalHAProxy(pulumi.dynamic.Resource, module="repman", name="LocalHAProxy"):
    """A real haproxy process on this host, detached so it outlives the deployment."""

    pid: pulumi.Output[int]
    admin_socket: pulumi.Output[str]
    config_path: pulumi.Output[str]
    write_address: pulumi.Output[str]
    read_address: pulumi.Output[str]
    instance: pulumi.Output[str]

    def __init__(self, name: str, args: LocalHAProxyArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = {k: getattr(args, k) for k in vars(args)}
        props["provider_version"] = PROVIDER_VERSION
        props.update({k: None for k in OUTPUT_KEYS})
        base = pulumi.ResourceOptions(delete_before_replace=True)
        super().__init__(LocalHAProxyProvider(), name, props, pulumi.ResourceOptions.merge(base, opts))


# ---- A local MariaDB Spider node as a routing layer ---------------------------------------

SPIDER_SECRET_KEYS = ("admin_password", "remote_password")
SPIDER_REPLACE_KEYS = ("base_dir", "server_id")
SPIDER_INPUT_KEYS = (
    "base_dir", "server_id", "port", "host", "plan", "admin_user", "remote_user", "primary",
    "server_name", "database", "provider_version",
)
SPIDER_OUTPUT_KEYS = ("pid", "address", "instance", "secret_digest")


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


class LocalSpiderProvider(ResourceProvider):
    """create: a local mariadbd with ha_spider and the server definition; update: re-point or
    restart; delete: stop and remove the node (it holds no data of its own)."""

    def _outs(self, props: dict[str, Any], instance: str, digest: str | None = None) -> dict[str, Any]:
        from repman.local.mariadb import read_pid as node_pid
        from components.providers.secret_digest import make_digest, without

        spec = _spider_node(props)
        return {**without(props, SPIDER_SECRET_KEYS), "pid": node_pid(spec.paths) or 0,
                "address": f"{spec.host}:{spec.port}", "instance": instance,
                "secret_digest": digest or make_digest(props, SPIDER_SECRET_KEYS)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        from repman.local.node import create_node

        create_node(_spider_node(props, str(props["admin_password"])))
        _point_spider(props)
        instance = f"spider:{props['host']}:{props['port']}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=self._outs(props, instance))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from repman.local.node import node_running
        from components.providers.secret_digest import digest_matches

        replaces = [k for k in SPIDER_REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in SPIDER_INPUT_KEYS if olds.get(k) != news.get(k)]
        if not digest_matches(olds.get("secret_digest"), news, SPIDER_SECRET_KEYS):
            changed.append("secrets")
        if has_unknowns(news):
            changed.append("unknown")
        elif not changed and not node_running(_spider_node(news)):
            changed.append("pid")
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, stables=["instance"],
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from repman.local.node import update_node

        password = str(news["admin_password"])
        update_node(_spider_node(olds, password), _spider_node(news, password))
        _point_spider(news)
        return UpdateResult(outs=self._outs(news, str(olds.get("instance") or _id)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from repman.local.node import delete_node

        delete_node(_spider_node(props), keep_data=False)


class LocalSpider(pulumi.dynamic.Resource, module="repman", name="LocalSpider"):
    """A real mariadbd with the Spider engine whose server definition follows the primary."""

    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    pid: pulumi.Output[int]

    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props = dict(props)
        for key in SPIDER_SECRET_KEYS:
            props[key] = pulumi.Output.secret(props[key])
        props["provider_version"] = PROVIDER_VERSION
        props.update({k: None for k in SPIDER_OUTPUT_KEYS})
        base = pulumi.ResourceOptions(additional_secret_outputs=["secret_digest"], delete_before_replace=True)
        super().__init__(LocalSpiderProvider(), name, props, pulumi.ResourceOptions.merge(base, opts))

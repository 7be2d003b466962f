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
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from repman.db import ServerAddress
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
from repman.routing.haproxy_process import HAProxyFiles, read_pid, reload, start, stop, write_config

from components.providers.secret_digest import has_unknowns

PROVIDER_VERSION = "1"
REPLACE_KEYS = ("base_dir",)
INPUT_KEYS = (
    "base_dir", "cluster", "servers", "primary", "write_port", "read_port", "bind_address", "tags",
    "nbthread", "check", "watcher", "provider_version",
)
OUTPUT_KEYS = ("pid", "admin_socket", "config_path", "write_address", "read_address", "instance")


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
        tags=tuple(props.get("tags") or ("masterslave", "readwritesplit")),
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
        elif not changed:
            files, conf = haproxy_config(news)
            if read_pid(files) is None:
                changed.append("pid")
            elif not files.config.exists() or files.config.read_text() != render_haproxy_config(conf):
                changed.append("config")
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, stables=["instance"],
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        files, conf, pid = _ensure(news)
        return UpdateResult(outs=_outs(news, files, conf, pid, str(olds.get("instance") or _id)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stop(HAProxyFiles(Path(str(props["base_dir"]))))


class LocalHAProxyArgs:
    """Inputs of one local HAProxy; ``servers`` are host:port strings (Outputs allowed)."""

    def __init__(
        self, *, base_dir: pulumi.Input[str], cluster: pulumi.Input[str], servers: pulumi.Input[list[str]],
        write_port: pulumi.Input[int], read_port: pulumi.Input[int], primary: pulumi.Input[str] = "",
        bind_address: pulumi.Input[str] = "127.0.0.1", tags: pulumi.Input[list[str]] = ("masterslave", "readwritesplit"),
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

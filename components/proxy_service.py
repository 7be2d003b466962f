"""``ProxyService``: the proxy in front of a cluster, planned from the service plan and proxy tags.

On the local backend it is a real HAProxy process (``LocalHAProxy``): one write port to the
primary, one read port over the replicas (unless ``noreadwritesplit``). Another backend may
offer its own proxy through an optional ``create_proxy(args, parent)`` method returning the
child resources and an outputs dict with the same keys. ``watcher_keys`` gives the routing
keys the watcher config needs to drive this proxy (``haproxy``, ``haproxy-runtime-api-servers``, ports).
"""

from __future__ import annotations

from typing import Any, Sequence

import pulumi

from components.providers.local_proxy import LocalHAProxy, LocalHAProxyArgs, LocalSpider
from repman.errors import ConfigError
from repman.plans import ServicePlan
from repman.tags import DEFAULT_PROXY_TAGS as DEFAULT_TAGS, validate_proxy_tags


class ProxyServiceArgs:
    """What the cluster plans for its proxy."""

    def __init__(
        self, *, cluster: str, backend: Any, servers: pulumi.Input[Sequence[str]], state_dir: str,
        tags: Sequence[str] = DEFAULT_TAGS, write_port: int = 3306, read_port: int = 3307,
        primary: pulumi.Input[str] = "", plan: ServicePlan | None = None, bind_address: str = "127.0.0.1",
        check: str = "tcp", watcher: str = "", spider_port: int = 0, secrets: Any = None,
        spider_server_id: int = 1000,
    ) -> None:
        self.cluster = cluster
        self.backend = backend
        self.servers = servers
        self.state_dir = state_dir
        self.tags = tuple(tags) or DEFAULT_TAGS
        self.write_port = write_port
        self.read_port = read_port
        self.primary = primary
        self.plan = plan
        self.bind_address = bind_address
        self.check = check
        self.watcher = watcher
        self.spider_port = spider_port            # >0: also a local MariaDB Spider node
        self.secrets = secrets                    # ClusterSecrets: the Spider node's admin/remote user
        self.spider_server_id = spider_server_id

    def validate(self) -> ProxyServiceArgs:
        validate_proxy_tags(self.tags)
        for key, port in (("haproxy-write-port", self.write_port), ("haproxy-read-port", self.read_port)):
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ConfigError(key, f"port {port!r} out of range")
        if "noreadwritesplit" not in self.tags and self.write_port == self.read_port:
            raise ConfigError("haproxy-read-port", "must differ from haproxy-write-port")
        if self.check not in ("tcp", "http"):
            raise ConfigError("haproxy-check", f"{self.check!r} is not one of tcp, http")
        if self.check == "http" and not self.watcher:
            raise ConfigError("haproxy-check", "http checks need the watcher's API address")
        if self.spider_port:
            if not 1 <= int(self.spider_port) <= 65535 or self.spider_port in (self.write_port, self.read_port):
                raise ConfigError("mdbshardproxy-hosts", f"Spider port {self.spider_port!r} is out of range or taken")
            if self.secrets is None or self.plan is None:
                raise ConfigError("mdbshardproxy-user", "a Spider node needs the cluster's secrets and plan")
        return self

    @property
    def read_split(self) -> bool:
        return "noreadwritesplit" not in self.tags


class ProxyService(pulumi.ComponentResource):
    """The cluster's proxy; on the local backend a detached haproxy process."""

    write_address: pulumi.Output[str]
    read_address: pulumi.Output[str]
    admin_socket: pulumi.Output[str]
    watcher_keys: pulumi.Output[dict]

    def __init__(self, name: str, args: ProxyServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("repman:proxy:ProxyService", name, None, opts)
        args.validate()
        backend_name = getattr(args.backend, "name", "")
        proxy_cores = args.plan.proxy_cores if args.plan else 0
        proxy_disk = args.plan.proxy_data_size_gb if args.plan else 0
        self.resources: list[pulumi.Resource] = []
        if backend_name == "local":
            haproxy = LocalHAProxy(f"{name}-haproxy", LocalHAProxyArgs(
                base_dir=f"{args.state_dir}/{args.cluster}-haproxy", cluster=args.cluster, servers=args.servers,
                write_port=args.write_port, read_port=args.read_port, primary=args.primary,
                bind_address=args.bind_address, tags=list(args.tags), nbthread=proxy_cores,
                check=args.check, watcher=args.watcher,
            ), pulumi.ResourceOptions(parent=self))
            self.resources.append(haproxy)
            outputs: dict[str, Any] = {
                "write_address": haproxy.write_address, "read_address": haproxy.read_address,
                "admin_socket": haproxy.admin_socket,
            }
        elif callable(getattr(args.backend, "create_proxy", None)):
            made, outputs = args.backend.create_proxy(args, self)
            self.resources.extend(made)
        else:
            pulumi.log.warn(f"backend {backend_name!r} provides no proxy: clients connect to the primary "
                            "directly (or configure proxysql/maxscale/consul routing in the watcher)", self)
            outputs = {"write_address": "", "read_address": "", "admin_socket": ""}
        spider_address: pulumi.Input[str] = ""
        if args.spider_port and backend_name == "local":
            if args.plan is None:                 # validate() refuses this already; narrows the type
                raise ConfigError("mdbshardproxy-user", "a Spider node needs the cluster's secrets and plan")
            spider = LocalSpider(f"{name}-spider", {
                "base_dir": f"{args.state_dir}/{args.cluster}-spider", "server_id": args.spider_server_id,
                "port": args.spider_port, "host": args.bind_address, "plan": args.plan.name,
                "admin_user": args.secrets.admin_user, "admin_password": args.secrets.admin_password,
                "remote_user": args.secrets.admin_user, "remote_password": args.secrets.admin_password,
                "primary": args.primary, "server_name": "repman_" + args.cluster.replace("-", "_").replace(".", "_"),
                "database": "",
            }, pulumi.ResourceOptions(parent=self))
            self.resources.append(spider)
            spider_address = spider.address
        elif args.spider_port:
            pulumi.log.warn(f"backend {backend_name!r}: no local Spider node; list Spider hosts in "
                            "mdbshardproxy-hosts instead", self)
        self.spider_address = pulumi.Output.from_input(spider_address)
        self.write_address = pulumi.Output.from_input(outputs["write_address"])
        self.read_address = pulumi.Output.from_input(outputs["read_address"])
        self.admin_socket = pulumi.Output.from_input(outputs["admin_socket"])
        self.watcher_keys = pulumi.Output.all(self.admin_socket, self.spider_address).apply(lambda v: {
            "haproxy": bool(v[0]), "haproxy-runtime-api-servers": [v[0]] if v[0] else [],
            "haproxy-write-port": args.write_port, "haproxy-read-port": args.read_port,
            **({"mdbshardproxy": True, "mdbshardproxy-hosts": [v[1]]} if v[1] else {}),
        })
        self.register_outputs({
            "write_address": self.write_address, "read_address": self.read_address,
            "admin_socket": self.admin_socket, "spider_address": self.spider_address, "tags": list(args.tags),
            "proxy_cores": proxy_cores, "proxy_data_size_gb": proxy_disk, "backend": backend_name,
        })

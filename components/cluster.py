"""``Cluster``: database nodes from the plan, bootstrap, and the outputs users connect with.

It knows nothing about where nodes run: the backend makes each node, the
cluster wires replication between the addresses it gets back.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.backends.base import Backend, ClusterSecrets
from components.database_service import DatabaseService, DatabaseServiceArgs
from components.providers.bootstrap import Bootstrap, BootstrapArgs
from components.providers.local_watcher import LocalWatcher, LocalWatcherArgs
from components.proxy_service import DEFAULT_TAGS as DEFAULT_PROXY_TAGS, ProxyService, ProxyServiceArgs
from repman.db import ServerAddress
from repman.local.watcher import WatcherFiles
from repman.spec import ClusterSpec
from repman.watcher_yaml import dump, env_ref, file_ref, render_watcher_config, secret_values


class ClusterArgs:
    """A validated spec and the backend chosen for it (``components.backends.get_backend``)."""

    def __init__(self, *, spec: ClusterSpec, backend: Backend) -> None:
        self.spec = spec
        self.backend = backend


def _credential(user: str | None, password: pulumi.Output | None) -> pulumi.Output:
    if user is None or password is None:
        return pulumi.Output.secret("")
    return pulumi.Output.secret(pulumi.Output.concat(user, ":", password))


class Cluster(pulumi.ComponentResource):
    """A replicating MariaDB cluster: one primary, read-only replicas on GTID replication."""

    servers: pulumi.Output[list[str]]
    primary_endpoint: pulumi.Output[str]
    replica_endpoints: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("repman:cluster:Cluster", name, None, opts)
        spec, backend = args.spec, args.backend
        secrets = ClusterSecrets.from_spec(spec)
        self.nodes: list[DatabaseService] = []
        serialized = bool(spec.values.get("prov-serialized"))   # repman: one node at a time, in order
        for node in spec.nodes:
            after = list(self.nodes[-1].resources) if serialized and self.nodes else []
            self.nodes.append(DatabaseService(
                f"{name}-db{node.index}",
                DatabaseServiceArgs(node=node, backend=backend, secrets=secrets),
                pulumi.ResourceOptions(parent=self, transformations=[_after(after)] if after else None),
            ))
        node_resources = [r for n in self.nodes for r in n.resources]
        self.extra = backend.create_cluster_resources(
            [_as_node_resources(n) for n in self.nodes], secrets, self,
        )
        self.servers = pulumi.Output.all(*[n.address for n in self.nodes]).apply(list)
        self.bootstrap: Bootstrap | None = None
        tls = backend.verified_tls_settings()  # ssl tag with a shared CA: verified TLS unless the stack says no
        if backend.bootstraps_from_deployer:
            self.bootstrap = Bootstrap(
                f"{name}-bootstrap",
                BootstrapArgs(
                    servers=self.servers,
                    members=pulumi.Output.all(*[n.instance for n in self.nodes]).apply(list),
                    admin_user=secrets.admin_user, admin_password=secrets.admin_password,
                    replication_user=secrets.replication_user, replication_password=secrets.replication_password,
                    monitoring_user=secrets.monitoring_user, monitoring_password=secrets.monitoring_password,
                    preferred_master=self._preferred_master(spec),
                    semisync=spec.semisync,
                    sysbench_table_size=spec.sysbench_table_size,
                    readonly_replicas=True,
                    replication_ssl=bool(spec.setting("replication-use-ssl")
                                         if "replication-use-ssl" in spec.watcher_settings
                                         else tls.get("replication-use-ssl", False)),
                    seed_local=backend.seeds_local_nodes,
                    ssh_seed_nodes=pulumi.Output.all(*[n.seed_info for n in self.nodes if n.seed_info is not None]
                                                     ).apply(list),
                    cluster_name=spec.name,
                    monitoring_datadir=(str(WatcherFiles(spec.state_dir / spec.name / "watcher").state_dir)
                                        if spec.watcher and backend.runs_local_watcher else ""),
                    load_sql=list(spec.values.get("prov-db-load-sql") or []),
                    load_csv=list(spec.values.get("prov-db-load-csv") or []),
                ),
                pulumi.ResourceOptions(parent=self, depends_on=node_resources + list(self.extra)),
            )
            self.primary_endpoint = self.bootstrap.primary
            self.replica_endpoints = self.bootstrap.replicas
        else:
            first = self._preferred_master(spec)
            self.primary_endpoint = pulumi.Output.from_input(first)
            self.replica_endpoints = pulumi.Output.all(self.servers, first).apply(
                lambda sf: [s for s in sf[0] if s != sf[1]])
        self.admin_credential = _credential(secrets.admin_user, secrets.admin_password)
        self.replication_credential = _credential(secrets.replication_user, secrets.replication_password)
        self.monitoring_credential = _credential(secrets.monitoring_user, secrets.monitoring_password)
        after_bootstrap: list[pulumi.Resource] = [self.bootstrap] if self.bootstrap is not None else node_resources
        self.proxy = self._proxy(name, spec, backend, after_bootstrap)
        routing: pulumi.Input[dict] = self.proxy.watcher_keys if self.proxy is not None else {}
        salvage = backend.salvage_settings()
        if salvage:
            routing = pulumi.Output.from_input(routing).apply(lambda r: {**salvage, **(r or {})})
        if tls:
            routing = pulumi.Output.from_input(routing).apply(lambda r: {**tls, **dict(r or {})})
        # The watcher config for any backend, secrets as {env: ...} references (run it anywhere).
        self.watcher_config = pulumi.Output.all(self.servers, routing).apply(
            lambda sr: dump(render_watcher_config(spec, sr[0], env_ref, routing=sr[1])))
        self.watcher: LocalWatcher | None = None
        if spec.watcher and backend.runs_local_watcher:
            proxy_resources = self.proxy.resources if self.proxy is not None else []
            self.watcher = self._local_watcher(name, spec, routing, after_bootstrap + proxy_resources)
        self.outputs: dict[str, Any] = {
            "servers": self.servers,
            "primary_endpoint": self.primary_endpoint,
            "replica_endpoints": self.replica_endpoints,
            "write_endpoint": self.proxy.write_address if self.proxy is not None else self.primary_endpoint,
            "read_endpoint": self.proxy.read_address if self.proxy is not None else "",
            "admin_credential": self.admin_credential,
            "replication_credential": self.replication_credential,
            "monitoring_credential": self.monitoring_credential,
            "plan": spec.plan.name,
            "tags": list(spec.db_tags),
            "backend": backend.describe(),
            "watcher_config": self.watcher_config,
            "watcher_config_path": self.watcher.config_path if self.watcher is not None else "",
            "watcher_api_url": self.watcher.api_url if self.watcher is not None else "",
        }
        self.register_outputs(self.outputs)

    def _proxy(self, name: str, spec: ClusterSpec, backend: Backend,
               after: list[pulumi.Resource]) -> ProxyService | None:
        """An HAProxy in front of the cluster when the stack routes through one (``haproxy: true``)."""
        if not spec.setting("haproxy"):
            return None
        return ProxyService(
            f"{name}-proxy",
            ProxyServiceArgs(
                cluster=spec.name, backend=backend, servers=self.servers,
                state_dir=str(spec.state_dir / spec.name), tags=spec.proxy_tags or DEFAULT_PROXY_TAGS,
                write_port=spec.setting("haproxy-write-port"), read_port=spec.setting("haproxy-read-port"),
                primary=self.primary_endpoint, plan=spec.plan, bind_address=spec.db_host,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _local_watcher(self, name: str, spec: ClusterSpec, routing: pulumi.Input[dict],
                       after: list[pulumi.Resource]) -> LocalWatcher:
        """``repman watch`` for this cluster, detached on this host (local backend)."""
        files = WatcherFiles(spec.state_dir / spec.name / "watcher")
        config = pulumi.Output.all(self.servers, routing).apply(lambda sr: render_watcher_config(
            spec, sr[0], file_ref(files.secrets_dir), routing={**sr[1], **local_fence(spec, sr[0])},
            state_dir=str(files.state_dir)))
        return LocalWatcher(
            f"{name}-watcher",
            LocalWatcherArgs(base_dir=str(files.base), cluster=spec.name, config=config,
                             secrets=pulumi.Output.secret(secret_values(spec)), api=dict(spec.api_settings),
                             keep_state=spec.keep_data_on_delete),
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _preferred_master(self, spec: ClusterSpec) -> pulumi.Output:
        pm = spec.preferred_master
        if isinstance(pm, ServerAddress):
            return pulumi.Output.from_input(pm.url)
        index = pm if isinstance(pm, int) else 1
        return self.nodes[index - 1].address


def local_fence(spec: ClusterSpec, servers: list[str]) -> dict[str, list[str]]:
    """failover-fence-pid-files for the local backend: the watcher kills an unreachable old
    master's process before a promotion (node N runs from <state>/<cluster>/dbN, as
    components/backends/local.py lays it out)."""
    base = spec.state_dir / spec.name
    return {"failover-fence-pid-files": [f"{server}={base / f'db{i}' / 'run' / 'mariadbd.pid'}"
                                         for i, server in enumerate(servers, start=1)]}


def _as_node_resources(service: DatabaseService):
    from components.backends.base import NodeResources

    return NodeResources(host=service.host, port=service.port, instance=service.instance,
                         resources=list(service.resources))


def _after(previous: list[pulumi.Resource]):
    """A transformation (inherited by a node's children) making them wait for the previous node."""
    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        # merge() appends the new depends_on to the child's own (a list, one resource or an Output)
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=list(previous)))
        return pulumi.ResourceTransformationResult(args.props, opts)
    return transform

"""Dynamic provider that wires replication once the nodes exist (``repman.bootstrap``).

create/update run the idempotent bootstrap; diff reports a change when an input
changed (servers, re-created nodes, credentials, semi-sync...) or when the live
primary is no longer the one in state (a failover since), so outputs follow it.
delete leaves replication as it is: the nodes go away on their own.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, ReadResult, UpdateResult

from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource
from repman.bootstrap import BootstrapRequest, bootstrap, current_primary
from repman.db import Credential, ServerAddress
from repman.errors import RepmanError
from repman.keys import coerce
from repman.rolling_restart import pending_local_nodes, restart_pending_nodes
from repman.spec import NAMESPACE, PROVISIONING_KEYS
from repman.topology import read_state


def _ssh_seeder(props: dict[str, Any], secrets: dict[str, str] | None):
    """Seeding between SSH hosts (onpremise backend), when the cluster says how to reach them."""
    nodes = {str(n["address"]): n for n in (props.get("ssh_seed_nodes") or [])}
    if not nodes:
        return None

    def seed(req):
        from components.providers.ssh_node import ssh_auth
        from repman.backends.onpremise import NodeState, OnPremNodeSpec
        from repman.backends.ssh_seed import seed_ssh_node
        from repman.seeding import choose_source

        source = choose_source(req)
        if req.target.url not in nodes or source.url not in nodes:
            raise RepmanError(f"seeding {req.target.url}: no SSH access to it or to {source.url}")
        target, origin = nodes[req.target.url], nodes[source.url]
        req.source = source

        def spec(raw: dict) -> OnPremNodeSpec:  # numbers come back from state as floats
            return OnPremNodeSpec.from_dict({**raw, "server_id": int(raw["server_id"]), "port": int(raw["port"])})
        state = NodeState(**{**target["state"], "port": int(target["state"]["port"])})
        return seed_ssh_node(req, spec(target["spec"]), state, spec(origin["spec"]),
                             ssh_auth(target["ssh"], secrets or {}))
    return seed


def _request(props: dict[str, Any], ssh_secrets: dict[str, str] | None = None) -> BootstrapRequest:
    servers = [ServerAddress.parse(s, "servers") for s in props["servers"]]
    monitoring = None
    if props.get("monitoring_user"):
        monitoring = Credential(str(props["monitoring_user"]), str(props.get("monitoring_password") or ""))
    preferred = props.get("preferred_master") or ""
    return BootstrapRequest(
        servers=servers,
        admin=Credential(str(props["admin_user"]), str(props["admin_password"])),
        replication=Credential(str(props["replication_user"]), str(props["replication_password"])),
        monitoring=monitoring,
        preferred_master=ServerAddress.parse(preferred, "preferred_master") if preferred else None,
        semisync=bool(props.get("semisync")),
        readonly_replicas=bool(props.get("readonly_replicas", True)),
        sysbench_table_size=int(props.get("sysbench_table_size") or 0),
        replication_ssl=bool(props.get("replication_ssl")),
        seed_local=bool(props.get("seed_local")),
        progress=_progress,
        cluster_name=str(props.get("cluster_name") or "bootstrap"),
        monitoring_datadir=str(props.get("monitoring_datadir") or ""),
        seeder=_ssh_seeder(props, ssh_secrets),
        load_sql=[str(p) for p in props.get("load_sql") or []],
        load_csv=[str(p) for p in props.get("load_csv") or []],
    )


def _progress(message: str) -> None:
    """Long steps (seeding: bytes copied, rate) reach the user while ``up`` runs."""
    print(f"    {message}", file=sys.stderr, flush=True)


def _run(props: dict[str, Any], digest: str | None = None,
         ssh_secrets: dict[str, str] | None = None) -> dict[str, Any]:
    req = _request(props, ssh_secrets)
    result = bootstrap(req)
    actions = list(result.actions)
    primary, replicas = result.primary.url, [r.url for r in result.replicas]
    if req.seed_local:
        restarted = restart_pending_nodes(req.servers, req.admin, req.replication, req.semisync,
                                          req.preferred_master, req.progress, req.cluster_name,
                                          req.monitoring_datadir)
        if restarted:
            actions += restarted
            now = live_primary(props)
            if now is not None and now != primary:
                primary, replicas = now, [s.url for s in req.servers if s.url != now]
    return {
        **BootstrapProvider.public_outputs(props, digest),
        "primary": primary,
        "replicas": replicas,
        "actions": actions,
    }


def live_primary(props: dict[str, Any], admin: Credential | None = None) -> str | None:
    """The primary the servers replicate from right now, or None when unknown."""
    try:
        admin = admin or _request(props).admin
        servers = [ServerAddress.parse(s, "servers") for s in props["servers"]]
        states = {a: read_state(a, admin, timeout=2) for a in servers}
        if not all(s.reachable for s in states.values()):
            return None
        found = current_primary(states)
    except (RepmanError, KeyError, ValueError):
        return None
    return found.url if found else None


def admin_from_config(config: Any) -> Credential | None:
    """``repman:db-servers-credential`` from stack config: ``read`` gets no secret inputs from state."""
    raw = config.get(f"{NAMESPACE}:db-servers-credential")
    try:
        value = coerce(PROVISIONING_KEYS["db-servers-credential"], raw)
    except RepmanError:
        return None
    return value if isinstance(value, Credential) and value.password else None


def _restarts_pending(props: dict[str, Any]) -> bool:
    """A local node's my.cnf changed in a way only a restart applies (repman.rolling_restart).

    The one look outside the inputs that ``diff`` takes: the node's update (earlier in the same
    ``up``) leaves the marker, and only a rolling restart by this resource clears it. It reads and
    changes nothing, so a preview stays side-effect free."""
    try:
        req = _request(props)
        return bool(pending_local_nodes(req.servers, req.admin))
    except (RepmanError, KeyError, ValueError):
        return False


class BootstrapProvider(ScaffoldProvider):
    secret_keys = ("admin_password", "replication_password", "monitoring_password")
    input_keys = (
        "servers", "members", "admin_user", "replication_user", "monitoring_user", "preferred_master",
        "semisync", "sysbench_table_size", "readonly_replicas", "provider_version", "load_sql", "load_csv",
        "replication_ssl",
    )
    output_keys = ("primary", "replicas", "actions", "secret_digest")
    stables = ()
    delete_before_replace = False
    admin: Credential | None = None
    ssh_secrets: dict[str, str] = {}

    def configure(self, req: ConfigureRequest) -> None:
        """The admin credential (for ``read``) and the SSH key or password of onpremise hosts
        (seeding), from stack config as SshNode does."""
        self.admin = admin_from_config(req.config)
        try:
            from components.providers.ssh_node import ssh_secrets_from_config
            self.ssh_secrets = ssh_secrets_from_config(req.config)
        except RepmanError:
            self.ssh_secrets = {}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Which server is primary now (a failover since the last up shows as drift)."""
        live = live_primary(props, self.admin) if self.admin else None
        return ReadResult(id_=id_, outs={**props, "observed_primary": live or props.get("primary")})

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _run(props, ssh_secrets=self.ssh_secrets)
        return CreateResult(id_=f"bootstrap-{uuid.uuid4().hex[:12]}", outs=outs)

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        if olds.get("observed_primary") not in (None, olds.get("primary")):
            return ["primary"]                # read() saw another primary (a failover since)
        if news.get("seed_local") and _restarts_pending(news):
            return ["rolling restart"]
        return []

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_run(news, self.kept_digest(olds, news), self.ssh_secrets))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


@dataclass(kw_only=True)
class BootstrapArgs(ResourceInputs):
    """Inputs of the bootstrap; every password must be a secret Output."""

    # only when set: existing stacks get no new input, hence no diff
    omit_when_empty = ("replication_ssl", "load_sql", "load_csv")

    servers: pulumi.Input[list[str]]
    members: pulumi.Input[list[str]]
    admin_user: str
    admin_password: pulumi.Input[str]
    replication_user: str
    replication_password: pulumi.Input[str]
    monitoring_user: str | None = None
    monitoring_password: pulumi.Input[str] | None = None
    preferred_master: pulumi.Input[str] = ""
    semisync: bool = False
    sysbench_table_size: int = 0
    readonly_replicas: bool = True
    replication_ssl: bool = False
    # Not an input key: how a joining node gets its data, not what the cluster is.
    seed_local: bool = False
    # Not input keys either: where the watcher keeps its operation lock and crash records.
    cluster_name: str = ""
    monitoring_datadir: str = ""
    ssh_seed_nodes: pulumi.Input[list] = field(default_factory=list)
    load_sql: list[str] | None = None
    load_csv: list[str] | None = None

    def __post_init__(self) -> None:
        self.monitoring_user = self.monitoring_user or ""
        self.monitoring_password = self.monitoring_password if self.monitoring_password is not None else ""
        self.replication_ssl = bool(self.replication_ssl)
        self.ssh_seed_nodes = self.ssh_seed_nodes if self.ssh_seed_nodes else []


class Bootstrap(ScaffoldResource, module="repman", name="Bootstrap"):
    """Replication users, GTID replication from the preferred master, read-only replicas."""

    primary: pulumi.Output[str]
    replicas: pulumi.Output[list[str]]
    actions: pulumi.Output[list[str]]

    provider_class = BootstrapProvider

"""Dynamic provider that wires replication once the nodes exist (``repman.bootstrap``).

create/update run the idempotent bootstrap; diff reports a change when an input
changed (servers, re-created nodes, credentials, semi-sync...) or when the live
primary is no longer the one in state (a failover since), so outputs follow it.
delete leaves replication as it is: the nodes go away on their own.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from repman.bootstrap import BootstrapRequest, bootstrap, current_primary
from repman.db import Credential, ServerAddress
from repman.errors import RepmanError
from repman.keys import coerce
from repman.spec import NAMESPACE, PROVISIONING_KEYS
from repman.rolling_restart import pending_local_nodes, restart_pending_nodes
from repman.topology import read_state

from components.providers.secret_digest import digest_matches, has_unknowns, make_digest, without

PROVIDER_VERSION = "1"
SECRET_KEYS = ("admin_password", "replication_password", "monitoring_password")
INPUT_KEYS = (
    "servers", "members", "admin_user", "replication_user", "monitoring_user", "preferred_master",
    "semisync", "sysbench_table_size", "readonly_replicas", "provider_version", "load_sql", "load_csv",
    "replication_ssl",
)
OUTPUT_KEYS = ("primary", "replicas", "actions", "secret_digest")


def _ssh_seeder(props: dict[str, Any], secrets: dict[str, str] | None):
    """Seeding between SSH hosts (onpremise backend), when the cluster says how to reach them."""
    nodes = {str(n["address"]): n for n in (props.get("ssh_seed_nodes") or [])}
    if not nodes:
        return None

    def seed(req):
        from repman.backends.onpremise import NodeState, OnPremNodeSpec
        from repman.backends.ssh_seed import seed_ssh_node
        from repman.seeding import choose_source
        from components.providers.ssh_node import ssh_auth

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
        **without(props, SECRET_KEYS),
        "primary": primary,
        "replicas": replicas,
        "actions": actions,
        "secret_digest": digest or make_digest(props, SECRET_KEYS),
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


class BootstrapProvider(ResourceProvider):
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

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        if has_unknowns(news):
            changed.append("unknown")
        elif not digest_matches(olds.get("secret_digest"), news, SECRET_KEYS):
            changed.append("credentials")
        elif not changed and olds.get("observed_primary") not in (None, olds.get("primary")):
            changed.append("primary")         # read() saw another primary (a failover since)
        elif not changed and news.get("seed_local") and _restarts_pending(news):
            changed.append("rolling restart")
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        same = digest_matches(olds.get("secret_digest"), news, SECRET_KEYS)
        return UpdateResult(outs=_run(news, olds.get("secret_digest") if same else None, self.ssh_secrets))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class BootstrapArgs:
    """Inputs of the bootstrap; every password must be a secret Output."""

    def __init__(
        self, *, servers: pulumi.Input[list[str]], members: pulumi.Input[list[str]],
        admin_user: str, admin_password: pulumi.Input[str],
        replication_user: str, replication_password: pulumi.Input[str],
        monitoring_user: str | None = None, monitoring_password: pulumi.Input[str] | None = None,
        preferred_master: pulumi.Input[str] = "", semisync: bool = False,
        sysbench_table_size: int = 0, readonly_replicas: bool = True, seed_local: bool = False,
        replication_ssl: bool = False,
        cluster_name: str = "", monitoring_datadir: str = "", ssh_seed_nodes: pulumi.Input[list] = (),
        load_sql: list[str] | None = None, load_csv: list[str] | None = None,
    ) -> None:
        self.servers = servers
        self.members = members
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.replication_user = replication_user
        self.replication_password = replication_password
        self.monitoring_user = monitoring_user or ""
        self.monitoring_password = monitoring_password if monitoring_password is not None else ""
        self.preferred_master = preferred_master
        self.semisync = semisync
        self.sysbench_table_size = sysbench_table_size
        self.readonly_replicas = readonly_replicas
        if replication_ssl:  # only when on: existing stacks see no new input, hence no diff
            self.replication_ssl = True
        # Not an INPUT_KEY: how a joining node gets its data, not what the cluster is.
        self.seed_local = seed_local
        # Not INPUT_KEYS either: where the watcher keeps its operation lock and crash records.
        self.cluster_name = cluster_name
        self.monitoring_datadir = monitoring_datadir
        self.ssh_seed_nodes = ssh_seed_nodes if ssh_seed_nodes else []
        if load_sql:                 # only when set: older states see no change
            self.load_sql = load_sql
        if load_csv:
            self.load_csv = load_csv


class Bootstrap(pulumi.dynamic.Resource, module="repman", name="Bootstrap"):
    """Replication users, GTID replication from the preferred master, read-only replicas."""

    primary: pulumi.Output[str]
    replicas: pulumi.Output[list[str]]
    actions: pulumi.Output[list[str]]

    def __init__(self, name: str, args: BootstrapArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = {k: getattr(args, k) for k in vars(args)}
        for key in SECRET_KEYS:
            props[key] = pulumi.Output.secret(props[key])
        props["provider_version"] = PROVIDER_VERSION
        props.update({k: None for k in OUTPUT_KEYS})
        base = pulumi.ResourceOptions(additional_secret_outputs=["secret_digest"])
        super().__init__(BootstrapProvider(), name, props, pulumi.ResourceOptions.merge(base, opts))

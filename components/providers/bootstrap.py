"""Dynamic provider that wires replication once the nodes exist (``repman.bootstrap``).

create/update run the idempotent bootstrap; diff reports a change when an input
changed (servers, re-created nodes, credentials, semi-sync...) or when the live
primary is no longer the one in state (a failover since), so outputs follow it.
delete leaves replication as it is: the nodes go away on their own.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from repman.bootstrap import BootstrapRequest, bootstrap, current_primary
from repman.db import Credential, ServerAddress
from repman.errors import RepmanError
from repman.topology import read_state

from components.providers.secret_digest import digest_matches, has_unknowns, make_digest, without

PROVIDER_VERSION = "1"
SECRET_KEYS = ("admin_password", "replication_password", "monitoring_password")
INPUT_KEYS = (
    "servers", "members", "admin_user", "replication_user", "monitoring_user", "preferred_master",
    "semisync", "sysbench_table_size", "readonly_replicas", "provider_version", "replication_ssl",
)
OUTPUT_KEYS = ("primary", "replicas", "actions", "secret_digest")


def _request(props: dict[str, Any]) -> BootstrapRequest:
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
    )


def _run(props: dict[str, Any], digest: str | None = None) -> dict[str, Any]:
    result = bootstrap(_request(props))
    return {
        **without(props, SECRET_KEYS),
        "primary": result.primary.url,
        "replicas": [r.url for r in result.replicas],
        "actions": list(result.actions),
        "secret_digest": digest or make_digest(props, SECRET_KEYS),
    }


def live_primary(props: dict[str, Any]) -> str | None:
    """The primary the servers replicate from right now, or None when unknown."""
    try:
        req = _request(props)
        states = {a: read_state(a, req.admin, timeout=2) for a in req.servers}
        if not all(s.reachable for s in states.values()):
            return None
        found = current_primary(states)
    except (RepmanError, KeyError, ValueError):
        return None
    return found.url if found else None


class BootstrapProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _run(props)
        return CreateResult(id_=f"bootstrap-{uuid.uuid4().hex[:12]}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        if has_unknowns(news):
            changed.append("unknown")
        elif not digest_matches(olds.get("secret_digest"), news, SECRET_KEYS):
            changed.append("credentials")
        elif not changed:
            live = live_primary(news)
            if live is not None and live != olds.get("primary"):
                changed.append("primary")
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        same = digest_matches(olds.get("secret_digest"), news, SECRET_KEYS)
        return UpdateResult(outs=_run(news, olds.get("secret_digest") if same else None))

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
        sysbench_table_size: int = 0, readonly_replicas: bool = True, replication_ssl: bool = False,
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

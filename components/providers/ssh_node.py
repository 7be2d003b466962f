"""Dynamic provider of one on-premise node over SSH (``repman.backends.onpremise`` does the work).

create: host checks, directories, my.cnf, datadir, supervised mariadbd, admin user;
        a failed step undoes what it created, so nothing half-made is left unregistered.
diff:   a new host, directory, node name or server id replaces; other inputs, a my.cnf
        that renders differently on the host or a stopped server are an update.
update: push the new my.cnf and restart cleanly when it changed.
delete: stop the server and its supervision; the directory stays unless ``keep_data`` is false.

The SSH key and password are never inputs: the provider reads them from the stack's
config in ``configure`` (so they are not stored in state); the admin password is
only kept as a salted digest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, ReadResult, UpdateResult

from components.providers.observed import KEY as OBSERVED, drift, integral, observed
from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource, stack_config_value
from repman.backends.onpremise import (
    HostFacts,
    NodeState,
    OnPremNodeSpec,
    create_node,
    delete_node,
    node_running,
    render_node_config,
    update_node,
)
from repman.backends.ssh import HostSession, SshAuth
from repman.errors import RepmanError

SSH_CONFIG_KEYS = {"private_key": "onpremise-ssh-key", "password": "onpremise-ssh-password"}


def node_spec(props: dict[str, Any], password: str = "") -> OnPremNodeSpec:
    return OnPremNodeSpec(
        host=str(props["host"]), node_name=str(props["node_name"]), server_id=int(props["server_id"]),
        port=int(props["port"]), plan=str(props["plan"]), tags=list(props.get("tags") or []),
        base_dir=str(props["base_dir"]), admin_user=str(props["admin_user"]), admin_password=password,
        service_user=str(props.get("service_user") or ""),
        install_packages=bool(props.get("install_packages")),
        check_resources=bool(props.get("check_resources", True)),
        db_settings=dict(props.get("db_settings") or {}),
    )


def ssh_auth(props: dict[str, Any], secrets: dict[str, str] | None = None) -> SshAuth:
    secrets = secrets or {}
    return SshAuth(
        user=str(props.get("ssh_user") or "root"), private_key=secrets.get("private_key", ""),
        password=secrets.get("password", ""), known_hosts=str(props.get("known_hosts") or ""),
        strict_host_key_checking=bool(props.get("strict_host_key_checking", True)),
        port=int(props.get("ssh_port") or 22), connect_timeout=float(props.get("connect_timeout") or 10),
    )


def ssh_secrets_from_config(config: Any) -> dict[str, str]:
    """``repman:onpremise-ssh-key`` / ``-password`` from stack config ({file: PATH} resolved)."""
    out: dict[str, str] = {}
    for field, name in SSH_CONFIG_KEYS.items():
        value = stack_config_value(config, name)
        if value:
            out[field] = str(value)
    return out


def _outs(props: dict[str, Any], state: NodeState, instance: str, digest: str | None = None) -> dict[str, Any]:
    spec = node_spec(props)
    return {
        **SshNodeProvider.public_outputs(props, digest),
        "address": f"{state.host}:{int(state.port)}",
        "instance": instance,
        "state": state.as_dict(),
        OBSERVED: observed(True, render_node_config(spec, HostFacts(**state.facts))),
    }


class SshNodeProvider(ScaffoldProvider):
    secret_keys = ("admin_password",)
    replace_keys = ("host", "base_dir", "node_name", "server_id")
    input_keys = (
        "host", "node_name", "server_id", "port", "plan", "tags", "base_dir", "admin_user", "service_user",
        "install_packages", "check_resources", "keep_data", "ssh_user", "ssh_port", "known_hosts",
        "strict_host_key_checking", "connect_timeout", "provider_version", "db_settings",
    )
    output_keys = ("address", "instance", "state", "secret_digest", "observed")
    secrets: dict[str, str] = {}

    def configure(self, req: ConfigureRequest) -> None:
        self.secrets = ssh_secrets_from_config(req.config)

    def auth(self, props: dict[str, Any]) -> SshAuth:
        return ssh_auth(props, self.secrets)

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = node_spec(props, str(props["admin_password"]))
        state = create_node(spec, self.auth(props))
        instance = f"{spec.host}:{spec.port}/{spec.server_id}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=_outs(props, state, instance))

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        if not olds.get("state"):
            return []
        state = NodeState(**integral(olds["state"]))
        return drift(olds, render_node_config(node_spec(news), HostFacts(**state.facts)))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        password = str(news["admin_password"])
        digest = self.kept_digest(olds, news)
        state = NodeState(**integral(olds["state"]))   # through the engine's wire every number is a float
        update_node(node_spec(olds, password if digest else ""), node_spec(news, password),
                    state, self.auth(news))
        return UpdateResult(outs=_outs(news, state, str(olds.get("instance") or _id), digest))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The server on its host (running, my.cnf), recorded for ``diff`` to compare."""
        if not props.get("state"):
            return ReadResult(id_=id_, outs=props)
        return ReadResult(id_=id_, outs={**props, OBSERVED: _observe(props, self.auth(props))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        keep_data = bool(props.get("keep_data", True))
        delete_node(NodeState(**integral(props["state"])), self.auth(props), keep_data=keep_data)


def _observe(props: dict[str, Any], auth: SshAuth) -> dict[str, Any]:
    """The host as it is: is the server running, what my.cnf does it have (unreachable: not running)."""
    state = NodeState(**integral(props["state"]))
    spec = node_spec(props)
    try:
        with HostSession(spec.host, auth) as session:
            if not node_running(session, state):
                return observed(False, None)
            return observed(True, session.read_file("read", spec.cnf))
    except RepmanError as exc:
        pulumi.log.warn(f"{spec.node_name}: {exc}")
        return observed(False, None)


@dataclass(kw_only=True)
class SshNodeArgs(ResourceInputs):
    """Inputs of one on-premise node; the admin password must be a secret Output."""

    omit_when_empty = ("db_settings",)   # only non-default settings: older states see no change

    host: pulumi.Input[str]
    node_name: pulumi.Input[str]
    server_id: pulumi.Input[int]
    port: pulumi.Input[int]
    plan: pulumi.Input[str]
    tags: pulumi.Input[list[str]]
    base_dir: pulumi.Input[str]
    admin_user: pulumi.Input[str]
    admin_password: pulumi.Input[str]
    ssh_user: pulumi.Input[str] = "root"
    ssh_port: pulumi.Input[int] = 22
    known_hosts: pulumi.Input[str] = ""
    strict_host_key_checking: pulumi.Input[bool] = True
    connect_timeout: pulumi.Input[float] = 10
    service_user: pulumi.Input[str] = ""
    install_packages: pulumi.Input[bool] = False
    check_resources: pulumi.Input[bool] = True
    keep_data: pulumi.Input[bool] = True
    db_settings: pulumi.Input[dict] | None = None


class SshNode(ScaffoldResource, module="repman", name="SshNode"):
    """A mariadbd on an existing host, provisioned over SSH with no agent."""

    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    state: pulumi.Output[dict]

    provider_class = SshNodeProvider
    replace_after_delete = True

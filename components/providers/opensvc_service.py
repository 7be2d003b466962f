"""Dynamic provider of one OpenSVC database service (``repman.backends.opensvc`` does the work).

create: cfg + sec objects, the service from the template, provision, start; outputs its address.
diff:   a new node name, namespace or agent replaces; another rendered definition,
        my.cnf, image or admin password is an update.
update: new definition and config keys pushed through the agent.
delete: stop, then purge (or delete keeping volumes when ``keep_data``).

The API credential is read from stack config in ``configure`` (never an input, never
in state); the admin password is an input marked secret and kept only as a digest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, ReadResult, UpdateResult

from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource, stack_config_value
from components.providers.secret_digest import digest_matches
from repman.backends.opensvc import (
    OpenSvcClient,
    OpenSvcSettings,
    ServiceNames,
    node_config_keys,
    provision_node,
    purge_node,
    render_service,
    service_address,
    update_node,
)
from repman.db import Credential
from repman.errors import ConfigError
from repman.password_hash import native_password_hash
from repman.plans import get_plan


def api_credential_from_config(config: Any) -> Credential | None:
    return stack_config_value(config, "opensvc-credential")


def _plan(props: dict[str, Any]):
    """The node's plan, from prov-service-plan-registry when the stack names one."""
    return get_plan(str(props["plan"]), registry=str(dict(props.get("db_settings") or {}).get("plan_registry", "")))


def _service_text(props: dict[str, Any]) -> str:
    return render_service(cluster=str(props["cluster"]), node_name=str(props["node_name"]),
                          server_id=int(props["server_id"]), plan=_plan(props),
                          image=str(props["image"]), network=str(props["network"]),
                          nodes=tuple(props.get("nodes") or ()))


class OpenSvcServiceProvider(ScaffoldProvider):
    secret_keys = ("admin_password",)
    replace_keys = ("api_url", "namespace", "node_name")
    input_keys = ("cluster", "server_id", "plan", "tags", "image", "network", "nodes", "ca_file", "keep_data",
                  "admin_user", "provider_version", "db_settings")
    output_keys = ("path", "address", "instance", "definition", "secret_digest")
    credential: Credential | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self.credential = api_credential_from_config(req.config)

    def client(self, props: dict[str, Any]) -> OpenSvcClient:
        if self.credential is None:
            raise ConfigError("repman:opensvc-credential", "is required (user:password; pulumi config set --secret)")
        return OpenSvcClient(OpenSvcSettings(
            api_url=str(props["api_url"]), credential=self.credential, namespace=str(props["namespace"]),
            ca_file=str(props.get("ca_file") or ""), network=str(props["network"]),
        ))

    def create(self, props: dict[str, Any]) -> CreateResult:
        names = ServiceNames(str(props["namespace"]), str(props["node_name"]))
        keys = node_config_keys(list(props.get("tags") or []), _plan(props),
                                dict(props.get("db_settings") or {}))
        admin = Credential(str(props["admin_user"]), str(props["admin_password"]))
        with self.client(props) as client:
            made = provision_node(client, names, _service_text(props), keys, admin)
        instance = f"{made.path}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=made.path, outs={
            **self.public_outputs(props), "path": made.path, "address": made.address, "instance": instance,
            "definition": _service_text(props)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        names = ServiceNames(str(news["namespace"]), str(news["node_name"]))
        keys = node_config_keys(list(news.get("tags") or []), _plan(news),
                                dict(news.get("db_settings") or {}))
        with self.client(news) as client:
            update_node(client, names, _service_text(news), keys)
            if not digest_matches(olds.get("secret_digest"), news, self.secret_keys):
                client.set_key(names.sec, "admin-password-hash", native_password_hash(str(news["admin_password"])))
        return UpdateResult(outs={
            **self.public_outputs(news), "path": olds.get("path"), "address": olds.get("address"),
            "instance": olds.get("instance"), "definition": _service_text(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The service as the agent reports it: gone when the agent has no such object."""
        names = ServiceNames(str(props["namespace"]), str(props["node_name"]))
        with self.client(props) as client:
            status = client.status(names.svc)
        obj = status.get("object") or {}
        if not obj:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs={**props, "address": service_address(status) or props.get("address"),
                                         "observed": {"avail": obj.get("avail"),
                                                      "provisioned": obj.get("provisioned")}})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        names = ServiceNames(str(props["namespace"]), str(props["node_name"]))
        with self.client(props) as client:
            purge_node(client, names, keep_data=bool(props.get("keep_data", True)))


@dataclass(kw_only=True)
class OpenSvcServiceArgs(ResourceInputs):
    """Inputs of one database service; ``admin_password`` must be a secret Output."""

    omit_when_empty = ("db_settings",)   # only non-default prov-db-* settings: older states see no change

    api_url: pulumi.Input[str]
    namespace: pulumi.Input[str]
    cluster: pulumi.Input[str]
    node_name: pulumi.Input[str]
    server_id: pulumi.Input[int]
    plan: pulumi.Input[str]
    tags: pulumi.Input[list[str]]
    image: pulumi.Input[str]
    network: pulumi.Input[str]
    admin_user: pulumi.Input[str]
    admin_password: pulumi.Input[str]
    nodes: pulumi.Input[list[str]] | None = None
    ca_file: pulumi.Input[str] = ""
    keep_data: pulumi.Input[bool] = True
    db_settings: pulumi.Input[dict] | None = None

    def __post_init__(self) -> None:
        self.nodes = self.nodes or []


class OpenSvcService(ScaffoldResource, module="repman", name="OpenSvcService"):
    """A MariaDB node as an OpenSVC service, orchestrated by the cluster's agents."""

    path: pulumi.Output[str]
    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    definition: pulumi.Output[str]

    provider_class = OpenSvcServiceProvider
    replace_after_delete = True

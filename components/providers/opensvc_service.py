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

import json
import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from repman.backends.opensvc import (
    OpenSvcClient, OpenSvcSettings, ServiceNames, node_config_keys, provision_node, purge_node, render_service,
    service_address, update_node,
)
from repman.db import Credential
from repman.errors import ConfigError
from repman.keys import coerce
from repman.plans import get_plan
from repman.password_hash import native_password_hash
from repman.spec import NAMESPACE, PROVISIONING_KEYS

from components.providers.secret_digest import digest_matches, make_digest, without

PROVIDER_VERSION = "1"
SECRET_KEYS = ("admin_password",)
REPLACE_KEYS = ("api_url", "namespace", "node_name")
INPUT_KEYS = ("cluster", "server_id", "plan", "tags", "image", "network", "nodes", "ca_file", "keep_data",
              "admin_user", "provider_version", "db_settings")


def api_credential_from_config(config: Any) -> Credential | None:
    raw = config.get(f"{NAMESPACE}:opensvc-credential")
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
    return coerce(PROVISIONING_KEYS["opensvc-credential"], raw)


def _plan(props: dict[str, Any]):
    """The node's plan, from prov-service-plan-registry when the stack names one."""
    return get_plan(str(props["plan"]), registry=str(dict(props.get("db_settings") or {}).get("plan_registry", "")))


def _service_text(props: dict[str, Any]) -> str:
    return render_service(cluster=str(props["cluster"]), node_name=str(props["node_name"]),
                          server_id=int(props["server_id"]), plan=_plan(props),
                          image=str(props["image"]), network=str(props["network"]),
                          nodes=tuple(props.get("nodes") or ()))


class OpenSvcServiceProvider(ResourceProvider):
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
            **without(props, SECRET_KEYS), "path": made.path, "address": made.address, "instance": instance,
            "definition": _service_text(props), "secret_digest": make_digest(props, SECRET_KEYS)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        if not digest_matches(olds.get("secret_digest"), news, SECRET_KEYS):
            changed.append("admin_password")
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, stables=["instance"],
                          delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        names = ServiceNames(str(news["namespace"]), str(news["node_name"]))
        keys = node_config_keys(list(news.get("tags") or []), _plan(news),
                                dict(news.get("db_settings") or {}))
        with self.client(news) as client:
            update_node(client, names, _service_text(news), keys)
            if not digest_matches(olds.get("secret_digest"), news, SECRET_KEYS):
                client.set_key(names.sec, "admin-password-hash", native_password_hash(str(news["admin_password"])))
        return UpdateResult(outs={
            **without(news, SECRET_KEYS), "path": olds.get("path"), "address": olds.get("address"),
            "instance": olds.get("instance"), "definition": _service_text(news),
            "secret_digest": make_digest(news, SECRET_KEYS)})

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


class OpenSvcServiceArgs:
    """Inputs of one database service; ``admin_password`` must be a secret Output."""

    def __init__(
        self, *, api_url: pulumi.Input[str], namespace: pulumi.Input[str], cluster: pulumi.Input[str],
        node_name: pulumi.Input[str], server_id: pulumi.Input[int], plan: pulumi.Input[str],
        tags: pulumi.Input[list[str]], image: pulumi.Input[str], network: pulumi.Input[str],
        admin_user: pulumi.Input[str], admin_password: pulumi.Input[str],
        nodes: pulumi.Input[list[str]] | None = None, ca_file: pulumi.Input[str] = "",
        keep_data: pulumi.Input[bool] = True, db_settings: pulumi.Input[dict] | None = None,
    ) -> None:
        if db_settings:              # only non-default prov-db-* settings: older states see no change
            self.db_settings = db_settings
        self.api_url = api_url
        self.namespace = namespace
        self.cluster = cluster
        self.node_name = node_name
        self.server_id = server_id
        self.plan = plan
        self.tags = tags
        self.image = image
        self.network = network
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.nodes = nodes or []
        self.ca_file = ca_file
        self.keep_data = keep_data


class OpenSvcService(pulumi.dynamic.Resource, module="repman", name="OpenSvcService"):
    """A MariaDB node as an OpenSVC service, orchestrated by the cluster's agents."""

    path: pulumi.Output[str]
    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    definition: pulumi.Output[str]

    def __init__(self, name: str, args: OpenSvcServiceArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = {k: getattr(args, k) for k in vars(args)}
        props["admin_password"] = pulumi.Output.secret(args.admin_password)
        props["provider_version"] = PROVIDER_VERSION
        props.update({"path": None, "address": None, "instance": None, "definition": None, "secret_digest": None})
        base = pulumi.ResourceOptions(additional_secret_outputs=["secret_digest"], delete_before_replace=True)
        super().__init__(OpenSvcServiceProvider(), name, props, pulumi.ResourceOptions.merge(base, opts))

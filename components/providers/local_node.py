"""Dynamic provider of one local database node (``repman.local.node`` does the work).

create: datadir, my.cnf, system tables, detached mariadbd, admin user.
diff:   a new datadir path or server id replaces; any other input, a my.cnf that
        renders differently (template upgrade, hand edit) or a dead process is an update.
update: live ``SET GLOBAL`` when every change is dynamic, otherwise a clean restart.
delete: clean shutdown; the datadir stays unless ``keep_data`` is false.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from repman.local.node import LocalNodeSpec, create_node, delete_node, render_node_config, update_node
from repman.local.mariadb import read_pid

from components.providers.observed import KEY as OBSERVED, drift, observed
from components.providers.secret_digest import digest_matches, has_unknowns, make_digest, without

PROVIDER_VERSION = "1"
SECRET_KEYS = ("admin_password",)
REPLACE_KEYS = ("base_dir", "server_id")
INPUT_KEYS = (
    "base_dir", "server_id", "port", "host", "plan", "tags", "admin_user", "max_connections",
    "keep_data", "ca_dir", "provider_version",
)
OUTPUT_KEYS = ("pid", "address", "instance", "cnf_path", "error_log", "secret_digest", "observed")


def node_spec(props: dict[str, Any], password: str = "") -> LocalNodeSpec:
    return LocalNodeSpec(
        base_dir=str(props["base_dir"]), server_id=int(props["server_id"]), port=int(props["port"]),
        plan=str(props["plan"]), tags=list(props.get("tags") or []), host=str(props["host"]),
        admin_user=str(props["admin_user"]), admin_password=password,
        max_connections=int(props.get("max_connections") or 200), ca_dir=str(props.get("ca_dir") or ""),
    )


def _outs(props: dict[str, Any], spec: LocalNodeSpec, instance: str, pid: int | None,
          digest: str | None = None) -> dict[str, Any]:
    return {
        **without(props, SECRET_KEYS),
        "pid": pid or 0,
        "address": f"{spec.host}:{spec.port}",
        "instance": instance,
        "cnf_path": str(spec.paths.cnf),
        "error_log": str(spec.paths.error_log),
        "secret_digest": digest or make_digest(props, SECRET_KEYS),
        OBSERVED: observed(bool(pid), render_node_config(spec)),
    }


class LocalNodeProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = node_spec(props, str(props["admin_password"]))
        try:
            pid = create_node(spec)
        except BaseException:
            delete_node(spec, keep_data=True)  # a failed create leaves no process behind
            raise
        instance = f"{spec.host}:{spec.port}/{spec.server_id}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=_outs(props, spec, instance, pid))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in INPUT_KEYS if olds.get(k) != news.get(k)]
        if not digest_matches(olds.get("secret_digest"), news, SECRET_KEYS):
            changed.append("admin_password")
        if has_unknowns(news):
            changed.append("unknown")
        elif not changed and not replaces:
            changed += drift(olds, render_node_config(node_spec(news)))
        return DiffResult(
            changes=bool(changed or replaces), replaces=replaces,
            stables=["instance"], delete_before_replace=True,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        password = str(news["admin_password"])
        same_password = digest_matches(olds.get("secret_digest"), news, SECRET_KEYS)
        old_spec = node_spec(olds, password if same_password else "")
        new_spec = node_spec(news, password)
        # In a cluster, a restart is left to its rolling restart (the bootstrap resource):
        # never the primary first, never two nodes at once.
        done = update_node(old_spec, new_spec, defer_restart=bool(news.get("defer_restart")))
        digest = olds.get("secret_digest") if same_password else None
        instance = str(olds.get("instance") or _id)
        if done == "recreated":  # new, empty data: bootstrap must re-attach (or seed) it
            instance = f"{new_spec.host}:{new_spec.port}/{new_spec.server_id}/{uuid.uuid4().hex[:12]}"
        return UpdateResult(outs=_outs(news, new_spec, instance, read_pid(new_spec.paths), digest))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live node: its process and the my.cnf on disk (gone: no datadir and no process)."""
        spec = node_spec(props)
        pid = read_pid(spec.paths)
        if pid is None and not spec.paths.cnf.exists():
            return ReadResult(id_="", outs={})
        cnf = spec.paths.cnf.read_text() if spec.paths.cnf.exists() else None
        return ReadResult(id_=id_, outs={**props, "pid": pid or 0, OBSERVED: observed(pid is not None, cnf)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delete_node(node_spec(props), keep_data=bool(props.get("keep_data", True)))


class LocalNodeArgs:
    """Inputs of one local node; ``admin_password`` must be a secret Output."""

    def __init__(
        self, *, base_dir: pulumi.Input[str], server_id: pulumi.Input[int], port: pulumi.Input[int],
        host: pulumi.Input[str], plan: pulumi.Input[str], tags: pulumi.Input[list[str]],
        admin_user: pulumi.Input[str], admin_password: pulumi.Input[str],
        max_connections: pulumi.Input[int] = 200, keep_data: pulumi.Input[bool] = True,
        ca_dir: pulumi.Input[str] = "", defer_restart: bool = False,
    ) -> None:
        self.base_dir = base_dir
        self.server_id = server_id
        self.port = port
        self.host = host
        self.plan = plan
        self.tags = tags
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.max_connections = max_connections
        self.keep_data = keep_data
        self.ca_dir = ca_dir
        # Not an INPUT_KEY: who restarts the node, not what the node is.
        self.defer_restart = defer_restart


class LocalNode(pulumi.dynamic.Resource, module="repman", name="LocalNode"):
    """A real mariadbd on this host, detached so it outlives the deployment."""

    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    pid: pulumi.Output[int]
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    cnf_path: pulumi.Output[str]

    def __init__(self, name: str, args: LocalNodeArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = {k: getattr(args, k) for k in vars(args)}
        props["admin_password"] = pulumi.Output.secret(args.admin_password)
        props["provider_version"] = PROVIDER_VERSION
        props.update({k: None for k in OUTPUT_KEYS})
        base = pulumi.ResourceOptions(additional_secret_outputs=["secret_digest"], delete_before_replace=True)
        super().__init__(LocalNodeProvider(), name, props, pulumi.ResourceOptions.merge(base, opts))

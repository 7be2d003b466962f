"""Dynamic provider of one local database node (``repman.local.node`` does the work).

create: datadir, my.cnf, system tables, detached mariadbd, admin user.
diff:   a new datadir path or server id replaces; any other input, a my.cnf that
        renders differently (template upgrade, hand edit) or a dead process is an update.
update: live ``SET GLOBAL`` when every change is dynamic, otherwise a clean restart.
delete: clean shutdown; the datadir stays unless ``keep_data`` is false.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.providers.observed import KEY as OBSERVED, drift, observed
from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource, read_live
from repman.local.mariadb import read_pid
from repman.local.node import LocalNodeSpec, create_node, delete_node, render_node_config, update_node


def node_spec(props: dict[str, Any], password: str = "") -> LocalNodeSpec:
    return LocalNodeSpec(
        base_dir=str(props["base_dir"]), server_id=int(props["server_id"]), port=int(props["port"]),
        plan=str(props["plan"]), tags=list(props.get("tags") or []), host=str(props["host"]),
        admin_user=str(props["admin_user"]), admin_password=password,
        max_connections=int(props.get("max_connections") or 200), ca_dir=str(props.get("ca_dir") or ""),
        db_settings={k: v for k, v in dict(props.get("db_settings") or {}).items()},
    )


class LocalNodeProvider(ScaffoldProvider):
    secret_keys = ("admin_password",)
    replace_keys = ("base_dir", "server_id")
    input_keys = (
        "base_dir", "server_id", "port", "host", "plan", "tags", "admin_user", "max_connections",
        "keep_data", "ca_dir", "provider_version", "db_settings",
    )
    output_keys = ("pid", "address", "instance", "cnf_path", "error_log", "secret_digest", "observed")

    def _outs(self, props: dict[str, Any], spec: LocalNodeSpec, instance: str, pid: int | None,
              digest: str | None = None) -> dict[str, Any]:
        return {
            **self.public_outputs(props, digest),
            "pid": pid or 0,
            "address": f"{spec.host}:{spec.port}",
            "instance": instance,
            "cnf_path": str(spec.paths.cnf),
            "error_log": str(spec.paths.error_log),
            OBSERVED: observed(bool(pid), render_node_config(spec)),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = node_spec(props, str(props["admin_password"]))
        try:
            if props.get("restore"):   # prov-db-restore-from: born from a backup, not empty
                from repman.backup.provision import restore_node
                pid = restore_node(spec, props["restore"])
            else:
                pid = create_node(spec)
        except BaseException:
            delete_node(spec, keep_data=True)  # a failed create leaves no process behind
            raise
        instance = f"{spec.host}:{spec.port}/{spec.server_id}/{uuid.uuid4().hex[:12]}"
        return CreateResult(id_=instance, outs=self._outs(props, spec, instance, pid))

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        return drift(olds, render_node_config(node_spec(news)))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        password = str(news["admin_password"])
        digest = self.kept_digest(olds, news)
        old_spec = node_spec(olds, password if digest else "")
        new_spec = node_spec(news, password)
        # In a cluster, a restart is left to its rolling restart (the bootstrap resource):
        # never the primary first, never two nodes at once.
        done = update_node(old_spec, new_spec, defer_restart=bool(news.get("defer_restart")))
        instance = str(olds.get("instance") or _id)
        if done == "recreated":  # new, empty data: bootstrap must re-attach (or seed) it
            instance = f"{new_spec.host}:{new_spec.port}/{new_spec.server_id}/{uuid.uuid4().hex[:12]}"
        return UpdateResult(outs=self._outs(news, new_spec, instance, read_pid(new_spec.paths), digest))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The live node: its process and the my.cnf on disk (gone: no datadir and no process)."""
        spec = node_spec(props)
        return read_live(id_, props, read_pid(spec.paths), spec.paths.cnf)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delete_node(node_spec(props), keep_data=bool(props.get("keep_data", True)))


@dataclass(kw_only=True)
class LocalNodeArgs(ResourceInputs):
    """Inputs of one local node; ``admin_password`` must be a secret Output."""

    omit_when_empty = ("db_settings",)   # only non-default settings: older states see no change

    base_dir: pulumi.Input[str]
    server_id: pulumi.Input[int]
    port: pulumi.Input[int]
    host: pulumi.Input[str]
    plan: pulumi.Input[str]
    tags: pulumi.Input[list[str]]
    admin_user: pulumi.Input[str]
    admin_password: pulumi.Input[str]
    max_connections: pulumi.Input[int] = 200
    keep_data: pulumi.Input[bool] = True
    ca_dir: pulumi.Input[str] = ""
    # Not an input key: who restarts the node, not what the node is.
    defer_restart: bool = False
    restore: pulumi.Input[dict] | None = None   # {"from", "to_time", "to_gtid"}: used at create only
    db_settings: pulumi.Input[dict] | None = None


class LocalNode(ScaffoldResource, module="repman", name="LocalNode"):
    """A real mariadbd on this host, detached so it outlives the deployment."""

    address: pulumi.Output[str]
    instance: pulumi.Output[str]
    pid: pulumi.Output[int]
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    cnf_path: pulumi.Output[str]

    provider_class = LocalNodeProvider
    replace_after_delete = True

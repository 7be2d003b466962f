"""``DatabaseService``: one database node, whatever backend runs it."""

from __future__ import annotations

import pulumi

from components.backends.base import Backend, ClusterSecrets
from repman.db import ServerAddress
from repman.spec import NodeSpec


class DatabaseServiceArgs:
    """One node of the spec, the backend that runs it and the cluster's secrets."""

    def __init__(self, *, node: NodeSpec, backend: Backend, secrets: ClusterSecrets) -> None:
        self.node = node
        self.backend = backend
        self.secrets = secrets


class DatabaseService(pulumi.ComponentResource):
    """A database node; its children are whatever the backend needs (process, pod, VM...)."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    address: pulumi.Output[str]
    instance: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("repman:database:DatabaseService", name, None, opts)
        made = args.backend.create_node(args.node, args.secrets, self)
        self.resources = made.resources
        self.host = pulumi.Output.from_input(made.host)
        self.port = pulumi.Output.from_input(made.port)
        self.instance = pulumi.Output.from_input(made.instance)
        self.address = pulumi.Output.all(self.host, self.port).apply(lambda hp: ServerAddress(hp[0], int(hp[1])).url)
        self.server_id = args.node.server_id
        self.seed_info = made.outputs.get("seed")  # how bootstrap seeds it, when the backend can
        self.register_outputs({
            "host": self.host, "port": self.port, "address": self.address, "instance": self.instance,
            "server_id": args.node.server_id, **made.outputs,
        })

"""Dynamic provider of one SlapOS request (``repman.backends.slapos`` does the work).

create/update: request the instance (root cluster instance or shared database) with
               its parameters; the master answers with where it is allocated.
diff:          any input change is an update (a SlapOS request is idempotent by title);
               a new title or software release replaces.
delete:        the same request with state "destroyed".
read:          the same request again with the recorded inputs: a SlapOS request is
               declarative and idempotent by title, and it is the only query a requester
               has on a plain master or slapproxy (``getInformation`` needs the HATEOAS API),
               so ``refresh`` sees where the instance is allocated now and its connection
               parameters. It cannot see an instance destroyed behind our back: the request
               asks for it again, as the next ``up`` would.

Client key/certificate paths come from inputs; nothing secret is sent by the deployer
(database passwords are made by the cluster and published to each requester only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from components.providers.scaffold import ResourceInputs, ScaffoldProvider, ScaffoldResource
from repman.backends.slapos import SharedDatabase, SlapOSClient, SlapOSSettings

PROVIDER_VERSION = ScaffoldProvider.version


def _client(props: dict[str, Any]) -> SlapOSClient:
    return SlapOSClient(SlapOSSettings(
        master_url=str(props["master_url"]), software_release=str(props["software_release"]),
        software_type=str(props.get("software_type") or "default"),
        repman_computer_guid=str(props["computer_guid"]), computer_guids=(),
        key_file=str(props.get("key_file") or ""), cert_file=str(props.get("cert_file") or ""),
    ))


def _request(props: dict[str, Any], state: str) -> dict[str, Any]:
    client = _client(props)
    if props.get("shared"):
        db = props["database"]
        got = client.request_database(SharedDatabase(str(db["name"]), str(db["user"])), str(props["cluster"]),
                                      state=state)
    else:
        got = client.request_cluster(json.loads(str(props["parameters"])), str(props["cluster"]), state=state)
    return {"instance_guid": got.instance_guid, "allocated_computer": got.computer_guid,
            "partition": got.partition_id, "connection": got.connection}


class SlapOSRequestProvider(ScaffoldProvider):
    replace_keys = ("title", "software_release", "shared", "cluster")
    input_keys = ("master_url", "software_type", "computer_guid", "parameters", "database", "key_file",
                  "cert_file", "provider_version")
    output_keys = ("instance_guid", "allocated_computer", "partition", "connection")
    stables = None

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _request(props, "started")
        return CreateResult(id_=f"{props['software_release']}#{props['title']}", outs={**props, **outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, **_request(news, "started")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs={**props, **_request(props, "started")})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _request(props, "destroyed")


@dataclass(kw_only=True)
class SlapOSRequestArgs(ResourceInputs):
    """One request: ``parameters`` (root) is the JSON text of the cluster dict; ``database``
    (shared) is ``{"name": ..., "user": ...}``."""

    master_url: pulumi.Input[str]
    software_release: pulumi.Input[str]
    software_type: pulumi.Input[str]
    computer_guid: pulumi.Input[str]
    title: pulumi.Input[str]
    cluster: pulumi.Input[str]
    parameters: pulumi.Input[str] = ""
    shared: bool = False
    database: dict[str, str] | None = field(default_factory=dict)
    key_file: pulumi.Input[str] = ""
    cert_file: pulumi.Input[str] = ""

    def __post_init__(self) -> None:
        self.database = self.database or {}


class SlapOSRequest(ScaffoldResource, module="repman", name="SlapOSRequest"):
    """An instance requested from a SlapOS master (the master allocates and deploys it)."""

    instance_guid: pulumi.Output[str]
    allocated_computer: pulumi.Output[str]
    partition: pulumi.Output[str]
    connection: pulumi.Output[dict]

    provider_class = SlapOSRequestProvider
    secret_outputs = ('connection',)

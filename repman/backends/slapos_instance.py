"""SlapOS instance side: what the root repman instance does with its request.

Run inside the root instance's partition (by its instance profile) with that
partition's ``ComputerPartition`` from the slap library:

- ``request_database_nodes``: one MariaDB instance per database, each on the
  computer its ``-sla-N-computer_guid`` names, as children of the root instance;
- ``serve_shared_databases``: for each shared (slave) instance hosted here, create its
  database and REQUIRE SSL user on the primary and publish the connection
  parameters to that shared instance only (``slave_reference``), never to others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from repman.backends.shared_db import SharedDatabaseGrant, create_shared_database, derive_password
from repman.backends.slapos import DATABASE_SOFTWARE_TYPE, decode_parameters
from repman.db import Credential, ServerAddress
from repman.errors import RepmanError


@dataclass
class ServedDatabase:
    slave_reference: str
    database: str = ""
    user: str = ""
    changes: list[str] = field(default_factory=list)
    error: str = ""


def node_title(cluster: str, index: int) -> str:
    return f"{cluster}-mariadb-{index}"


def request_database_nodes(partition: Any, software_release: str) -> dict[str, list[Any]]:
    """Children of the root instance: ``database-amount`` MariaDB instances per cluster."""
    params = decode_parameters(partition.getInstanceParameterDict())
    clusters = params.get("repman-cluster-dict") or {}
    out: dict[str, list[Any]] = {}
    for cluster, settings in clusters.items():
        amount = int(settings.get("database-amount", 0))
        nodes = []
        for i in range(amount):
            filter_kw = {}
            guid = settings.get(f"-sla-{i}-computer_guid")
            if guid:
                filter_kw["computer_guid"] = guid
            node_params = {"cluster": cluster, "server-id": i + 1, "tags": settings.get("tags", []),
                           "service-plan": settings.get("service-plan", ""),
                           "use-ipv6": settings.get("use-ipv6", True)}
            nodes.append(partition.request(
                software_release, DATABASE_SOFTWARE_TYPE, node_title(cluster, i),
                partition_parameter_kw={"_": json.dumps(node_params, sort_keys=True)}, filter_kw=filter_kw,
            ))
        out[cluster] = nodes
    return out


def serve_shared_databases(
    partition: Any, primary: ServerAddress, admin: Credential, secret: str,
    public_hosts: dict[str, str] | None = None,
) -> list[ServedDatabase]:
    """Create each hosted shared instance's database and publish its parameters to it alone.

    ``public_hosts`` maps a label (``ipv4``, ``ipv6``) to the address clients use; each
    gives one ``url-<label>`` connection parameter. ``secret`` seeds the per-tenant passwords.
    """
    hosts = public_hosts or {"ipv4": primary.host}
    served: list[ServedDatabase] = []
    for slave in partition.getInstanceParameterDict().get("slave_instance_list") or []:
        ref = str(slave.get("slave_reference") or "")
        item = ServedDatabase(ref)
        served.append(item)
        try:
            params = decode_parameters(slave)
            item.database = str(params.get("name") or "")
            item.user = str(params.get("user") or item.database)
            grant = SharedDatabaseGrant(item.database, item.user, derive_password(secret, ref))
            item.changes = create_shared_database(primary, admin, grant)
        except RepmanError as exc:
            item.error = str(exc)
            partition.setConnectionDict({"error": item.error}, slave_reference=ref)
            continue
        connection = {"database": grant.database, "user": grant.user, "password": grant.password,
                      "ssl": "required", "port": str(primary.port)}
        for label, host in hosts.items():
            shown = f"[{host}]" if ":" in host else host
            connection[f"url-{label}"] = (f"mysql://{grant.user}:{grant.password}@{shown}:{primary.port}/"
                                          f"{grant.database}?ssl-mode=REQUIRED")
        partition.setConnectionDict(connection, slave_reference=ref)
    return served

"""SlapOS requester side: the cluster and per-user databases requested from a SlapOS master.

As in the SlapOS integration of replication-manager, the deployer requests one root
"repman" instance whose parameters (JSON in the ``_`` parameter) describe the
cluster: database amount, the computer of each database (``-sla-N-computer_guid``),
configurator tags, proxy tags and failover settings. The root instance then requests
the MariaDB instances itself. A per-user database is a shared (slave) instance
hosted by the root instance; its connection parameters go to its requester only.

The ``slap`` library of slapos.core is imported lazily (``pip install repman[slapos]``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repman.errors import ConfigError, RepmanError

if TYPE_CHECKING:
    from repman.spec import ClusterSpec

ROOT_SOFTWARE_TYPE = "default"
DATABASE_SOFTWARE_TYPE = "mariadb"
# Watcher settings sent to the root instance (the names of seed 003's request).
FAILOVER_KEYS = (
    "autorejoin", "failover-mode", "failover-limit", "failover-falsepositive-heartbeat",
    "failover-falsepositive-heartbeat-timeout", "failover-falsepositive-ping-counter",
    "failover-max-slave-delay", "failover-readonly-state", "failover-restart-unsafe", "failover-time-limit",
    "switchover-at-equal-gtid", "switchover-slave-wait-catch", "switchover-wait-kill", "switchover-wait-trx",
    "switchover-wait-write-query",
)
_IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class SlapOSError(RepmanError):
    """The SlapOS master refused or failed a request."""


@dataclass(frozen=True)
class SlapOSSettings:
    master_url: str
    software_release: str
    software_type: str
    repman_computer_guid: str
    computer_guids: tuple[str, ...]
    key_file: str = ""
    cert_file: str = ""


@dataclass(frozen=True)
class SharedDatabase:
    """One per-user database, requested as a shared instance of the cluster."""

    name: str
    user: str

    @property
    def title(self) -> str:
        return f"db-{self.name}"

    def parameters(self, cluster: str) -> dict[str, str]:
        return {"_": json.dumps({"repman-cluster": cluster, "name": self.name, "user": self.user},
                                sort_keys=True)}


def settings_from_spec(spec: ClusterSpec) -> SlapOSSettings:
    v = spec.values
    for key in ("slapos-master-url", "slapos-software-release", "slapos-repman-computer-guid"):
        if not v[key]:
            raise ConfigError(f"repman:{key}", "is required for prov-orchestrator slapos")
    if not re.match(r"^https?://", v["slapos-master-url"]):
        raise ConfigError("repman:slapos-master-url", f"{v['slapos-master-url']!r} must be an http(s) URL")
    guids = tuple(v["slapos-computer-guids"])
    if len(guids) != spec.node_count:
        raise ConfigError("repman:slapos-computer-guids",
                          f"{len(guids)} computers listed but the cluster has {spec.node_count} databases")
    if bool(v["slapos-key-file"]) != bool(v["slapos-cert-file"]):
        raise ConfigError("repman:slapos-key-file", "slapos-key-file and slapos-cert-file go together")
    return SlapOSSettings(
        master_url=v["slapos-master-url"], software_release=v["slapos-software-release"],
        software_type=v["slapos-software-type"], repman_computer_guid=v["slapos-repman-computer-guid"],
        computer_guids=guids, key_file=_expand(v["slapos-key-file"]), cert_file=_expand(v["slapos-cert-file"]),
    )


def _expand(path: str) -> str:
    return os.path.expanduser(path) if path else ""


def shared_databases_from_spec(spec: ClusterSpec) -> list[SharedDatabase]:
    """``slapos-databases`` entries: ``db`` or ``db:user`` (MySQL identifiers)."""
    out: list[SharedDatabase] = []
    for entry in spec.values["slapos-databases"]:
        name, _, user = entry.partition(":")
        user = user or name
        for what, value in (("database", name), ("user", user)):
            if not _IDENT.match(value):
                raise ConfigError("repman:slapos-databases",
                                  f"{what} {value!r} in {entry!r}: letters, digits and _ only (up to 64)")
        if any(d.name == name for d in out):
            raise ConfigError("repman:slapos-databases", f"database {name!r} is listed twice")
        out.append(SharedDatabase(name, user))
    return out


def root_title(cluster: str) -> str:
    return f"repman-{cluster}"


def cluster_parameters(spec: ClusterSpec, settings: SlapOSSettings) -> dict[str, Any]:
    """The root instance's parameter dict, in the shape of seed 003's request."""
    cluster: dict[str, Any] = {"database-amount": spec.node_count}
    for i, guid in enumerate(settings.computer_guids):
        cluster[f"-sla-{i}-computer_guid"] = guid
    cluster["tags"] = list(spec.db_tags)
    cluster["proxy-tags"] = list(spec.proxy_tags)
    cluster["service-plan"] = spec.plan.name
    cluster["innodb-file-per-table"] = 1
    cluster["use-ipv6"] = True
    for key in FAILOVER_KEYS:
        value = spec.setting(key)
        cluster[key] = int(value) if isinstance(value, float) and value.is_integer() else value
    return {"repman-cluster-dict": {spec.name: cluster}}


def encode_parameters(parameters: dict[str, Any]) -> dict[str, str]:
    """SlapOS JSON parameters travel as one ``_`` string (the instance schema's serialisation)."""
    return {"_": json.dumps(parameters, sort_keys=True)}


def decode_parameters(parameter_dict: dict[str, Any]) -> dict[str, Any]:
    raw = parameter_dict.get("_")
    if raw is None:
        return {k: v for k, v in parameter_dict.items() if not k.startswith(("slap_", "slave_"))}
    try:
        value = json.loads(raw)
    except ValueError:
        raise SlapOSError(f"instance parameter '_' is not JSON: {str(raw)[:60]!r}") from None
    if not isinstance(value, dict):
        raise SlapOSError("instance parameter '_' must be a JSON object")
    return value


@dataclass
class RequestedInstance:
    """What the master answered for one request."""

    title: str
    instance_guid: str
    computer_guid: str
    partition_id: str
    parameters: dict[str, Any] = field(default_factory=dict)
    connection: dict[str, Any] = field(default_factory=dict)


def _slap_module() -> Any:
    try:
        import slapos.slap as slap_module
    except ImportError:
        raise RepmanError("the slapos backend needs slapos.core (pip install 'repman[slapos]')") from None
    return slap_module


class SlapOSClient:
    """The deployer's open order on a SlapOS master (or a local slapproxy)."""

    def __init__(self, settings: SlapOSSettings, timeout: float = 60) -> None:
        self.settings = settings
        slap_module = _slap_module()
        import requests
        from slapos.slap.exception import SlapException

        self._errors: tuple[type[BaseException], ...] = (SlapException, requests.RequestException, OSError)
        self.slap = slap_module.slap()
        try:
            self.slap.initializeConnection(settings.master_url, key_file=settings.key_file or None,
                                           cert_file=settings.cert_file or None, timeout=timeout)
        except Exception as exc:
            raise SlapOSError(f"slapos master {settings.master_url}: {exc}") from None

    def _request(self, what: str, **kwargs: Any) -> Any:
        try:
            return self.slap.registerOpenOrder().request(self.settings.software_release, **kwargs)
        except self._errors as exc:
            raise SlapOSError(f"slapos master {self.settings.master_url}: {what}: "
                              f"{type(exc).__name__} {str(exc)[:200]}".rstrip()) from None

    def request_cluster(self, parameters: dict[str, Any], cluster: str, state: str = "started") -> RequestedInstance:
        title = root_title(cluster)
        inst = self._request(
            f"request of {title}", partition_reference=title,
            partition_parameter_kw=encode_parameters(parameters), software_type=self.settings.software_type,
            filter_kw={"computer_guid": self.settings.repman_computer_guid}, state=state,
        )
        return self._describe(title, inst)

    def request_database(self, db: SharedDatabase, cluster: str, root_instance_guid: str = "",
                         state: str = "started") -> RequestedInstance:
        filter_kw = {"computer_guid": self.settings.repman_computer_guid}
        if root_instance_guid:
            filter_kw["instance_guid"] = root_instance_guid
        inst = self._request(
            f"request of shared database {db.title}", partition_reference=db.title,
            partition_parameter_kw=db.parameters(cluster), software_type=self.settings.software_type,
            filter_kw=filter_kw, state=state, shared=True,
        )
        return self._describe(db.title, inst)

    @staticmethod
    def _describe(title: str, inst: Any) -> RequestedInstance:
        """Read the answer's own fields only: the slap getters would re-fetch the *hosting*
        partition (for a shared instance, the root's parameters and connection)."""
        fields = vars(inst)
        return RequestedInstance(
            title=title, instance_guid=str(fields.get("_instance_guid") or ""),
            computer_guid=str(fields.get("slap_computer_id") or fields.get("_computer_id") or ""),
            partition_id=str(fields.get("slap_computer_partition_id") or fields.get("_partition_id") or ""),
            parameters=dict(fields.get("_parameter_dict") or {}),
            connection=dict(fields.get("_connection_dict") or {}),
        )

"""Stack configuration -> one validated ``ClusterSpec`` (no Pulumi here).

The Pulumi program, the Nix module check and the tests all go through
``load_cluster_spec``: a bad value is reported once, naming its ``repman:`` key,
before any resource exists. Keys use replication-manager's names; the table
``PROVISIONING_KEYS`` is the single schema: the shared keys here, each backend's own
keys from its table beside the backend (``repman/backends/<backend>_keys.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from repman.api.keys import API_KEYS
from repman.backends.docker_keys import DOCKER_KEYS
from repman.backends.kube_keys import KUBE_KEYS
from repman.backends.onpremise_keys import ONPREMISE_KEYS
from repman.backends.opensvc_keys import OPENSVC_KEYS
from repman.backends.slapos_keys import SLAPOS_KEYS
from repman.backup.keys import BACKUP_KEYS
from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.keys import Key, coerce, key_table
from repman.mycnf import known_tags, validate_tags
from repman.plans import ServicePlan, get_plan, load_plans
from repman.routing.keys import ROUTING_KEYS
from repman.secret_store import key_path_in_effect
from repman.tags import PROXY_TAGS as PROXY_TAG_VOCABULARY, validate_proxy_tags
from repman.watcher.keys import WATCHER_KEYS

NAMESPACE = "repman"
ORCHESTRATORS = ("local", "onpremise", "kube", "docker", "opensvc", "slapos")
PROXY_TAGS = tuple(sorted(PROXY_TAG_VOCABULARY))
DEFAULT_DB_TAGS = ("gtidstrict", "row", "readonly", "noquerycache", "innodb", "smallredolog")
_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

#: keys every backend reads (cluster, nodes, images)
_CLUSTER_KEYS = key_table(
    Key("cluster-name", "str", "cluster1", "cluster name: prefix of every resource and watcher section"),
    Key("prov-orchestrator", "enum", "local", "where database nodes run", choices=ORCHESTRATORS),
    Key("prov-service-plan", "str", "x3.tiny", "service plan: node count (digit after x) and resource tier"),
    Key("prov-db-tags", "strlist", list(DEFAULT_DB_TAGS), "my.cnf configurator tags of every database node"),
    Key("prov-proxy-tags", "strlist", [], "proxy tags, repman's vocabulary (masterslave, readwritesplit, "
        "noreadwritesplit, readonmaster, ssl; platform hints docker, pkg, linux, ...)"),
    Key("prov-db-nodes", "int", None, "override the plan's database node count (at least 1)"),
    Key("db-servers-base-port", "int", 3310, "port of the first node; node i listens on base + i - 1",
        minimum=1, maximum=65535),
    Key("prov-db-host", "str", "127.0.0.1", "address the local nodes bind to and report"),
    Key("db-servers-credential", "credential", None, "admin user:password of every node", secret=True),
    Key("replication-credential", "credential", None, "replication user:password", secret=True),
    Key("monitoring-credential", "credential", None, "sponsor/monitoring user:password (optional)",
        secret=True),
    Key("db-servers-prefered-master", "str", "",
        "node indexes (1-based) or host[:port], comma-separated as in repman: the first is bootstrapped as "
        "primary, the watcher prefers them in order"),
    Key("prov-state-dir", "path", ".state", "folder for node datadirs, provider state and the watcher config"),
    Key("prov-keep-data-on-delete", "bool", True, "keep datadirs when a node is deleted"),
    Key("prov-protect", "bool", True, "protect stateful resources (nodes, volumes, StatefulSets): "
        "the engine refuses to delete or replace them"),
    Key("prov-sysbench-table-size", "int", 0, "rows of an sbtest1 table created at bootstrap (0: none)",
        minimum=0),
    Key("prov-db-image", "str", "mariadb:10.11", "container image of database nodes (docker, kube)"),
    Key("prov-watcher-image", "str", "repman/watcher:0.1.0",
        "container image of the repman watcher and bootstrap job (docker, kube); scripts/build-images.sh builds it"),
    Key("prov-proxy-image", "str", "haproxy:2.6",
        "docker: container image of the HAProxy in front of the cluster (haproxy: true); "
        "the official image's interface"),
)
#: each backend's own keys (issue 5), declared beside the backend; their names start with the backend's
BACKEND_KEYS: dict[str, dict[str, Key]] = {
    "onpremise": ONPREMISE_KEYS, "kube": KUBE_KEYS, "docker": DOCKER_KEYS, "opensvc": OPENSVC_KEYS,
    "slapos": SLAPOS_KEYS,
}
#: keys every backend reads again: the watcher, restore, node settings, data loading
_DEPLOYMENT_KEYS = key_table(
    Key("prov-watcher", "bool", True, "run the repman watcher for this cluster (local backend: detached)"),
    # issue 11: a new cluster from a backup and a point in time (local backend)
    Key("prov-db-restore-from", "path", "", "local: watcher config (YAML) of the cluster whose backups and "
        "binlog archive the new cluster's nodes are restored from (empty: start empty)"),
    Key("prov-db-restore-to-time", "str", "", "local: with prov-db-restore-from, restore to this time "
        "(ISO 8601 or @EPOCH); empty with no GTID: the end of the binlog archive"),
    Key("prov-db-restore-to-gtid", "str", "", "local: with prov-db-restore-from, restore to this GTID"),
    # seed 004's provisioning details, repman's names and units (issue 16)
    Key("prov-db-max-connections", "int", 200, "max_connections of every database node (repman's default: 1000)",
        minimum=10, maximum=100000),
    Key("prov-db-expire-log-days", "int", 5, "days binary logs are kept (expire_logs_days)", minimum=0, maximum=99),
    Key("prov-db-domain", "int", 0, "GTID domain id of the cluster (gtid_domain_id)", minimum=0, maximum=4294967295),
    Key("prov-db-apply-dynamic-config", "bool", True,
        "apply a changed my.cnf live (SET GLOBAL) where the variable is dynamic; off: restart the node "
        "(repman's default is off)"),
    Key("prov-serialized", "bool", False, "provision database nodes one at a time, in order (else in parallel)"),
    Key("prov-db-load-sql", "strlist", [], "SQL files run once on the primary after bootstrap, in order"),
    Key("prov-db-load-csv", "strlist", [],
        "CSV files loaded once into the primary after bootstrap; file name <schema>.<table>.csv"),
    Key("prov-db-disk-temp-size", "int", 128, "temporary space of a node in MB (container backends)",
        minimum=1),
    Key("prov-db-docker-tmpfs-size", "str", "", "tmpfs size of a node's /tmp on container backends "
        "(e.g. 256m; empty: no tmpfs)"),
    Key("prov-service-plan-registry", "str", "",
        "CSV file or http(s) URL of service plans in repman's registry format (empty: service_plans/)"),
)
#: the single schema of stack keys, in the order Pulumi.yaml, the Nix schema and the docs list them
PROVISIONING_KEYS: dict[str, Key] = {
    **_CLUSTER_KEYS, **{name: key for table in BACKEND_KEYS.values() for name, key in table.items()},
    **_DEPLOYMENT_KEYS,
}
REQUIRED_KEYS = ("db-servers-credential", "replication-credential")
# Watcher keys the provisioner fills in itself from what it deployed.
DERIVED_WATCHER_KEYS = ("db-servers-hosts",)


def watcher_passthrough_keys() -> dict[str, Key]:
    """Watcher and routing keys a stack may set; they go to the watcher config as given."""
    out: dict[str, Key] = {}
    for table in (WATCHER_KEYS, ROUTING_KEYS, BACKUP_KEYS):
        for name, key in table.items():
            if name not in PROVISIONING_KEYS and name not in DERIVED_WATCHER_KEYS:
                out[name] = key
    return out


@dataclass(frozen=True)
class NodeSpec:
    """One database node as every backend sees it."""

    index: int          # 1-based
    name: str           # "<cluster>-db<index>"
    server_id: int
    port: int


@dataclass(frozen=True)
class ClusterSpec:
    """Everything the program needs, validated; credentials are never printed."""

    name: str
    orchestrator: str
    plan: ServicePlan
    db_tags: tuple[str, ...]
    proxy_tags: tuple[str, ...]
    nodes: tuple[NodeSpec, ...]
    base_port: int
    db_host: str
    admin: Credential
    replication: Credential
    monitoring: Credential | None
    preferred_master: int | ServerAddress | None
    state_dir: Path
    keep_data_on_delete: bool
    sysbench_table_size: int
    db_image: str
    kube_namespace: str
    watcher: bool
    #: every entry of db-servers-prefered-master, in order (repman's list); the first is preferred_master
    preferred_masters: tuple[int | ServerAddress, ...] = ()
    values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: watcher/routing keys the stack set (raw values, secrets possibly {env}/{file} references)
    watcher_settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: ``api-*`` keys the stack set: the watcher serves its HTTP API when there is any
    api_settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def setting(self, name: str) -> Any:
        """A watcher/routing/API key's validated value, or its default."""
        key = watcher_passthrough_keys().get(name) or API_KEYS[name]
        raw = self.watcher_settings.get(name, self.api_settings.get(name))
        return coerce(key, raw)

    @property
    def semisync(self) -> bool:
        return "semisync" in self.db_tags

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    def db_settings(self) -> dict[str, Any]:
        """Node settings from the prov-db-* keys that differ from their defaults."""
        wanted = {"max_connections": self.values.get("prov-db-max-connections", 200),
                  "expire_logs_days": self.values.get("prov-db-expire-log-days", 5),
                  "gtid_domain_id": self.values.get("prov-db-domain", 0),
                  "apply_dynamic_config": self.values.get("prov-db-apply-dynamic-config", True)}
        defaults = {"max_connections": 200, "expire_logs_days": 5, "gtid_domain_id": 0,
                    "apply_dynamic_config": True}
        out = {k: v for k, v in wanted.items() if v != defaults[k]}
        if self.values.get("prov-service-plan-registry"):      # the node's plan lives in the registry
            out["plan_registry"] = self.values["prov-service-plan-registry"]
        return out

    def preferred_index(self) -> int | None:
        """The preferred master as a node index, when it names one of our nodes."""
        pm = self.preferred_master
        if isinstance(pm, int):
            return pm
        if isinstance(pm, ServerAddress):
            for n in self.nodes:
                if pm.port == n.port and pm.host in (self.db_host, "localhost"):
                    return n.index
        return None


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _strip_namespace(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``repman:key`` and bare ``key``; other namespaces belong to other providers."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise ConfigError(str(name), "config keys must be strings")
        if ":" in name:
            ns, _, bare = name.partition(":")
            if ns != NAMESPACE:
                continue
            name = bare
        out[name] = _decode(value)
    return out


def _decode(value: Any) -> Any:
    """Pulumi hands structured config (lists, objects) to programs as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _split(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Provisioning keys, watcher/routing keys and api keys; anything else is unknown."""
    passthrough = watcher_passthrough_keys()
    prov, watcher, api = {}, {}, {}
    for name, value in raw.items():
        if name in PROVISIONING_KEYS:
            prov[name] = value
        elif name in passthrough:
            watcher[name] = value
        elif name in API_KEYS:
            api[name] = value
        elif name in DERIVED_WATCHER_KEYS:
            raise ConfigError(_key(name), "is set by the provisioner from the deployed nodes")
        else:
            raise ConfigError(_key(name), "unknown key (see Pulumi.yaml and `repman keys` for the known ones)")
    for table, section in ((passthrough, watcher), (API_KEYS, api)):
        for name, value in section.items():
            try:
                coerce(table[name], value)
            except ConfigError as exc:
                raise ConfigError(_key(name), str(exc).split(": ", 1)[1]) from None
    return prov, watcher, api


def _coerce_all(raw: dict[str, Any]) -> dict[str, Any]:
    for name in REQUIRED_KEYS:
        if raw.get(name) in (None, ""):
            raise ConfigError(_key(name), "is required (user:password; `pulumi config set --secret`)")
    values: dict[str, Any] = {}
    for name, key in PROVISIONING_KEYS.items():
        try:
            values[name] = coerce(key, raw.get(name))
        except ConfigError as exc:
            raise ConfigError(_key(name), str(exc).split(": ", 1)[1]) from None
    return values


def _credential(values: dict[str, Any], name: str, required: bool) -> Credential | None:
    cred = values[name]
    if cred is None:
        if required:
            raise ConfigError(_key(name), "is required")
        return None
    if not cred.password:
        raise ConfigError(_key(name), f"password of user {cred.user!r} is missing (expected user:password)")
    return cred


def _preferred_list(text: str, nodes: tuple[NodeSpec, ...]) -> list[int | ServerAddress]:
    """repman's list: every entry checked; the first one is the bootstrap primary."""
    return [p for p in (_preferred(t, nodes) for t in text.split(",")) if p is not None]


def _preferred(text: str, nodes: tuple[NodeSpec, ...]) -> int | ServerAddress | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        index = int(text)
        if not 1 <= index <= len(nodes):
            raise ConfigError(_key("db-servers-prefered-master"),
                              f"node index {index} is not between 1 and {len(nodes)}")
        return index
    return ServerAddress.parse(text, _key("db-servers-prefered-master"), default_port=3306)


def load_cluster_spec(raw: Mapping[str, Any], project_dir: Path | str | None = None) -> ClusterSpec:
    """Validate stack config (``repman:``-namespaced or bare keys) into a ``ClusterSpec``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(NAMESPACE, f"expected a mapping of config keys, got {type(raw).__name__}")
    stripped = _strip_namespace(raw)
    key_path = stripped.get("monitoring-key-path")
    with key_path_in_effect(key_path if isinstance(key_path, str) else ""):  # for {encrypted: ...} values
        prov_raw, watcher_settings, api_settings = _split(stripped)
        values = _coerce_all(prov_raw)
    name = values["cluster-name"]
    if not _CLUSTER_NAME.match(name):
        raise ConfigError(_key("cluster-name"), f"{name!r} must be lowercase letters, digits and '-' "
                          "(up to 40, starting with a letter)")
    try:
        plan = get_plan(values["prov-service-plan"], key=_key("prov-service-plan"),
                        registry=values["prov-service-plan-registry"])
    except ConfigError as exc:
        if str(exc).startswith("prov-service-plan-registry:"):
            raise ConfigError(_key("prov-service-plan-registry"), str(exc).split(": ", 1)[1]) from None
        raise
    db_tags = tuple(validate_tags(values["prov-db-tags"], key=_key("prov-db-tags")))
    proxy_tags = tuple(validate_proxy_tags(values["prov-proxy-tags"], _key("prov-proxy-tags")))
    if watcher_settings.get("replication-use-ssl") in (True, "true", "on", "yes") and "ssl" not in db_tags:
        raise ConfigError(_key("replication-use-ssl"), "needs the ssl tag in prov-db-tags (the nodes' certificates)")
    count = values["prov-db-nodes"]
    if count is None:
        count = plan.db_nodes
    elif count < 1:
        raise ConfigError(_key("prov-db-nodes"), f"node count must be at least 1, got {count}")
    base_port = values["db-servers-base-port"]
    if base_port + count - 1 > 65535:
        raise ConfigError(_key("db-servers-base-port"),
                          f"{count} nodes from port {base_port} go past 65535")
    nodes = tuple(
        NodeSpec(index=i, name=f"{name}-db{i}", server_id=i, port=base_port + i - 1)
        for i in range(1, count + 1)
    )
    admin = _credential(values, "db-servers-credential", required=True)
    replication = _credential(values, "replication-credential", required=True)
    monitoring = _credential(values, "monitoring-credential", required=False)
    if replication.user == admin.user:  # type: ignore[union-attr]
        raise ConfigError(_key("replication-credential"), "must use another user than db-servers-credential")
    from repman.backup.provision import check_restore_keys
    check_restore_keys(values, NAMESPACE)
    base = Path(project_dir or Path.cwd()).resolve()
    for load_key in ("prov-db-load-sql", "prov-db-load-csv"):
        values[load_key] = [str(base / Path(p).expanduser()) for p in values[load_key]]
    state_dir = Path(values["prov-state-dir"]).expanduser()
    if not state_dir.is_absolute():
        state_dir = Path(project_dir or Path.cwd()).resolve() / state_dir
    return ClusterSpec(
        name=name,
        orchestrator=values["prov-orchestrator"],
        plan=plan,
        db_tags=db_tags,
        proxy_tags=proxy_tags,
        nodes=nodes,
        base_port=base_port,
        db_host=values["prov-db-host"],
        admin=admin,  # type: ignore[arg-type]
        replication=replication,  # type: ignore[arg-type]
        monitoring=monitoring,
        preferred_master=next(iter(_preferred_list(values["db-servers-prefered-master"], nodes)), None),
        preferred_masters=tuple(_preferred_list(values["db-servers-prefered-master"], nodes)),
        state_dir=state_dir,
        keep_data_on_delete=values["prov-keep-data-on-delete"],
        sysbench_table_size=values["prov-sysbench-table-size"],
        db_image=values["prov-db-image"],
        kube_namespace=values["kube-namespace"],
        watcher=values["prov-watcher"],
        values=values,
        watcher_settings=watcher_settings,
        api_settings=api_settings,
    )


def spec_schema() -> dict[str, Any]:
    """The key table as JSON-able data (the Nix options are checked against it)."""
    keys = []
    for key in PROVISIONING_KEYS.values():
        entry: dict[str, Any] = {
            "name": key.name, "kind": key.kind, "default": key.default, "help": key.help,
            "secret": key.secret, "required": key.name in REQUIRED_KEYS,
        }
        if key.choices:
            entry["choices"] = list(key.choices)
        if key.minimum is not None:
            entry["minimum"] = key.minimum
        if key.maximum is not None:
            entry["maximum"] = key.maximum
        if key.name == "prov-service-plan":
            entry["choices"] = sorted(load_plans())
        elif key.name == "prov-db-tags":
            entry["choices"] = known_tags()
        elif key.name == "prov-proxy-tags":
            entry["choices"] = list(PROXY_TAGS)
        keys.append(entry)
    return {"namespace": NAMESPACE, "keys": keys}

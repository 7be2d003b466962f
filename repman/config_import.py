"""``repman config import config.toml``: a replication-manager configuration, migrated.

replication-manager reads TOML: a ``[Default]`` section whose keys every cluster
inherits, one section per cluster, and ``include`` directories of more ``*.toml``
files. Each key is mapped by name: our watcher and routing tables (same name, same
meaning), the provisioning table (stack file), repman's older aliases, and keys we
knowingly ignore (one warning line each, the reason given). A key we do not know at
all is a warning too, never an error: a repman user's configuration imports without
edits. A value we cannot honour (a topology we do not run) is refused, naming it.

Outputs: the watcher YAML (credentials in 0600 files referenced as ``{file: ...}``),
and one Pulumi stack file per cluster with the credentials as ``secure:`` values
(passphrase provider, ``PULUMI_CONFIG_PASSPHRASE``). Nothing is written before every
cluster converted.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from repman.errors import ConfigError
from repman.keys import Key, coerce
from repman.routing.keys import ROUTING_KEYS
from repman.spec import ORCHESTRATORS, PROVISIONING_KEYS
from repman.watcher.keys import WATCHER_KEYS

#: repman's older names (its own aliases) -> the key name it reads today
ALIASES = {
    "hosts": "db-servers-hosts", "user": "db-servers-credential", "rpluser": "replication-credential",
    "prefmaster": "db-servers-prefered-master", "ignore-servers": "db-servers-ignored-hosts",
    "wait-kill": "switchover-wait-kill", "wait-trx": "switchover-wait-trx",
    "wait-write-query": "switchover-wait-write-query", "gtidcheck": "switchover-at-equal-gtid",
    "maxdelay": "failover-max-slave-delay", "failcount": "failover-falsepositive-ping-counter",
    "readonly": "failover-readonly-state", "pre-failover-script": "failover-pre-script",
    "post-failover-script": "failover-post-script", "maxscale-host": "maxscale-servers",
    "working-directory": "monitoring-datadir", "rejoin-script": "autorejoin-script",
    "multimaster": "replication-multi-master", "multi-tier-slave": "replication-multi-tier-slave",
    "connect-timeout": "db-servers-connect-timeout", "logfile": "log-file",
}

#: repman keys whose meaning we keep under another name here
RENAMED = {"maxscale-password": "maxscale-pass", "mdbshardproxy-servers": "mdbshardproxy-hosts",
           "shardproxy": "mdbshardproxy", "shardproxy-servers": "mdbshardproxy-hosts",
           "shardproxy-credential": "mdbshardproxy-user"}

#: keys of our tables that replication-manager does not have (our additions, or older repman
#: names it dropped); every other key of our tables keeps repman's name and meaning
OUR_OWN_KEYS = frozenset((
    "failover-falsepositive-replicas-agree", "failover-falsepositive-replicas-agree-pings",
    "replication-heartbeat-period", "semisync", "crash-records-keep", "switchover-wait-route-change-ms",
    "proxy-timeout", "proxy-resync-interval", "kube-role-labels", "haproxy-runtime-api-servers",
    "haproxy-read-on-master", "proxysql-copy-grants", "maxscale-api-port", "maxscale-monitor-follow",
    "maxscale-monitor-name", "mdbshardproxy", "mdbshardproxy-hosts", "mdbshardproxy-user",
    "mdbshardproxy-remote-user", "mdbshardproxy-server-name", "mdbshardproxy-database", "failover-vip-script",
    "failover-script-timeout", "cluster-name", "prov-db-nodes", "db-servers-base-port", "prov-db-host",
    "monitoring-credential", "prov-state-dir", "prov-keep-data-on-delete", "prov-protect",
    "prov-sysbench-table-size", "prov-db-image", "prov-watcher", "prov-db-docker-tmpfs-size",
))
OUR_OWN_PREFIXES = ("kube-", "onpremise-", "docker-", "opensvc-", "slapos-")

#: repman keys that would make us run another topology than GTID master/replicas when on
REFUSED_WHEN_SET = {
    "replication-multi-master": "multi-master (active/passive) clusters are not run by this watcher yet",
    "replication-multi-tier-slave": "relay (multi-tier) replicas are not run by this watcher yet",
    "replication-multi-master-ring": "ring topologies are not run by this watcher",
    "replication-multi-master-wsrep": "Galera clusters are not run by this watcher",
    "replication-multi-master-grouprep": "group replication is not run by this watcher",
    "replication-active-passive": "active/passive clusters are not run by this watcher yet",
    "replication-delayed-hosts": "delayed replicas are not run by this watcher yet",
}

#: documented repman keys we ignore on purpose, and why
IGNORED = {
    "title": "display name only (the section name is the cluster name)",
    "db-servers-connect-timeout": "our connections use fixed short timeouts tied to monitoring-ticker",
    "db-servers-read-timeout": "our connections use fixed short timeouts tied to monitoring-ticker",
    "verbose": "log verbosity is a process option (repman watch logs every decision)",
    "log-file": "the watcher logs to standard output for its supervisor",
    "maxscale-port": "maxadmin port; we drive MaxScale over its REST API (maxscale-api-port)",
    "maxscale-disable-monitor": "use maxscale-monitor-follow",
    "autorejoin-script": "not run; rejoin is done by the watcher itself",
    "autorejoin-semisync": "semi-sync roles follow the semisync key",
    "http-server": "the watcher's HTTP API is configured in the top-level api: section",
    "http-bind-address": "the watcher's HTTP API is configured in the top-level api: section",
    "http-port": "the watcher's HTTP API is configured in the top-level api: section",
    "http-bootstrap-button": "provisioning is done by the Pulumi program, not from the dashboard",
    "opensvc-host": "the opensvc backend reads opensvc-api-url",
    "failover-event-scheduler": "the event scheduler is always carried to the new master",
    "monitoring-sharedir": "templates ship with the package",
    "haproxy-binary-path": "HAProxy is found on PATH",
    "haproxy-mode": "runtime API mode only",
    "haproxy-stat-port": "statistics are read through the runtime API",
}

#: prefixes of repman features that have no counterpart here; the reason is shown once per key
IGNORED_PREFIXES = {
    "graphite-": "metrics export is not implemented (the HTTP API serves state)",
    "mail-": "this mail option has no counterpart",
    "backup-": "backups are configured by the backup feature, not imported",
    "scheduler-": "schedules are not imported",
    "arbitration-": "arbitration between replication-managers is not implemented",
    "force-": "best-practice enforcement is not implemented",
    "log-": "logging options are process options here",
    "monitoring-": "this monitoring option has no counterpart",
    "api-": "the HTTP API is configured in the top-level api: section (api-users with hashed passwords)",
    "prov-": "this provisioning option has no counterpart in the stack keys",
    "proxysql-": "this ProxySQL option has no counterpart",
    "maxscale-": "this MaxScale option has no counterpart",
    "haproxy-": "this HAProxy option has no counterpart",
    "sysbench-": "benchmarks run from bench/",
    "vault-": "secrets come from {env}/{file} references or Pulumi secrets",
    "cloud18-": "cloud18 is not supported",
    "check-": "this check has no counterpart",
    "autorejoin-": "this rejoin option has no counterpart",
    "failover-": "this failover option has no counterpart",
    "switchover-": "this switchover option has no counterpart",
    "replication-": "this replication option has no counterpart",
    "db-servers-": "this server option has no counterpart",
    "mysqlrouter-": "MySQL Router is not driven",
    "sphinx-": "Sphinx is not driven",
    "myproxy-": "the embedded MySQL proxy is not implemented",
    "proxyjanitor-": "proxy janitor is not implemented",
    "shardproxy-": "this shard proxy option has no counterpart",
    "registry-": "this registry option has no counterpart",
    "http-": "the HTTP API is configured in the top-level api: section",
    "opensvc-": "this OpenSVC option has no counterpart",
    "onpremise-": "this on-premise option has no counterpart",
    "slapos-": "this SlapOS option has no counterpart",
}

#: provisioning keys that only belong in a stack file (credentials go to both outputs)
_CREDENTIALS = ("db-servers-credential", "replication-credential")
_STACK_ONLY_SKIP = ("prov-state-dir",)
_WATCHER_TABLES: dict[str, Key] = {**WATCHER_KEYS, **ROUTING_KEYS}
_SCRIPT_KEYS = ("failover-pre-script", "failover-post-script", "alert-script", "db-servers-state-change-script",
                "failover-vip-script")
_STACK_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass
class ImportedCluster:
    name: str
    watcher: dict[str, Any] = field(default_factory=dict)
    stack: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    #: what the stack file stores (the replication user may be renamed, see _stack_credentials)
    stack_credentials: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class ImportResult:
    clusters: dict[str, ImportedCluster]
    warnings: list[str]


# -- reading ---------------------------------------------------------------------------------

def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None


def _include_dirs(value: Any, base: Path) -> list[Path]:
    out = []
    for item in (value.split(",") if isinstance(value, str) else list(value or [])):
        p = Path(str(item).strip()).expanduser()
        if not p.is_absolute():
            p = base / p if (base / p).exists() else Path.cwd() / p
        out.append(p)
    return out


def read_repman_config(path: Path | str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """``(default section, {cluster: section}, sources)`` after following ``include`` directories."""
    path = Path(path)
    doc = _read_toml(path)
    default: dict[str, Any] = {}
    clusters: dict[str, dict[str, Any]] = {}
    sources = [str(path)]

    def absorb(document: dict[str, Any], origin: Path) -> None:
        for name, value in document.items():
            if isinstance(value, dict):
                target = default if name.lower() == "default" else clusters.setdefault(name, {})
                target.update(value)
            else:                           # a top-level key outside any section: a default
                default[name] = value

    absorb(doc, path)
    seen: set[Path] = set()
    pending = _include_dirs(default.pop("include", None), path.parent)
    while pending:
        directory = pending.pop(0)
        if directory in seen:
            continue
        seen.add(directory)
        if not directory.is_dir():
            raise ConfigError(f"{path} include", f"{directory} is not a directory")
        for file in sorted(directory.glob("*.toml")):
            sources.append(str(file))
            absorb(_read_toml(file), file)
        pending += _include_dirs(default.pop("include", None), directory)
    return default, clusters, sources


# -- mapping ---------------------------------------------------------------------------------

def _classify(name: str) -> tuple[str, str]:
    """(target, detail): target is watcher, stack, refused, ignored or unknown."""
    name = RENAMED.get(ALIASES.get(name, name), ALIASES.get(name, name))
    if name in REFUSED_WHEN_SET:
        return "refused", name
    if name in _WATCHER_TABLES:
        return "watcher", name
    if name in PROVISIONING_KEYS:
        return "stack", name
    if name in IGNORED:
        return "ignored", IGNORED[name]
    close = difflib.get_close_matches(name, list(_WATCHER_TABLES) + list(PROVISIONING_KEYS), n=1, cutoff=0.9)
    if close:                                   # a typo of a key we know beats a prefix guess
        return "unknown", f"did you mean {close[0]}?"
    for prefix, why in IGNORED_PREFIXES.items():
        if name.startswith(prefix):
            return "ignored", why
    return "unknown", "not a replication-manager key we know"


def _is_set(value: Any) -> bool:
    return value not in (None, False, "", 0, [], "false", "0")


def _stack_cluster_name(name: str) -> str:
    text = _STACK_NAME.sub("-", name.lower()).strip("-") or "cluster"
    return (text if text[0].isalpha() else f"c-{text}")[:40]


def _convert(name: str, section: Mapping[str, Any], where: str, warnings: list[str]) -> ImportedCluster:
    out = ImportedCluster(name)
    for raw_key, value in section.items():
        target, detail = _classify(raw_key)
        at = f"{where} {raw_key}"
        if target == "refused":
            if _is_set(value):
                raise ConfigError(at, f"{value!r}: {REFUSED_WHEN_SET[detail]}")
            continue
        if target in ("ignored", "unknown"):
            warnings.append(f"{at}: {'ignored' if target == 'ignored' else 'unknown key, ignored'}: {detail}")
            continue
        key = _WATCHER_TABLES.get(detail) or PROVISIONING_KEYS[detail]
        if detail != raw_key:
            warnings.append(f"{at}: imported as {detail} (repman's {'alias' if raw_key in ALIASES else 'name'})")
        if detail in _SCRIPT_KEYS and value and not Path(str(value)).is_file():
            warnings.append(f"{at}: {value!r} does not exist on this machine: not imported")
            continue
        try:
            coerce(key, value)
        except ConfigError as exc:
            raise ConfigError(at, str(exc).split(": ", 1)[1]) from None
        if key.kind == "credential":
            out.credentials[detail] = str(value)
        elif target == "watcher":
            out.watcher[detail] = value
        else:
            out.stack[detail] = value
    return out


def _stack_config(cluster: ImportedCluster, warnings: list[str], where: str) -> dict[str, Any]:
    """Stack keys: the cluster as repman described it, provisioned by us."""
    stack: dict[str, Any] = {"cluster-name": _stack_cluster_name(cluster.name)}
    if stack["cluster-name"] != cluster.name:
        warnings.append(f"{where}: stack cluster-name is {stack['cluster-name']!r} (lowercase letters, "
                        "digits and '-')")
    for name, value in cluster.stack.items():
        if name in _STACK_ONLY_SKIP:
            continue
        if name == "prov-orchestrator" and value not in ORCHESTRATORS:
            warnings.append(f"{where} prov-orchestrator: {value!r} is not a backend here: local is used")
            continue
        stack[name] = value
    hosts = coerce(WATCHER_KEYS["db-servers-hosts"], cluster.watcher.get("db-servers-hosts"))
    if hosts and "prov-service-plan" not in stack and "prov-db-nodes" not in stack:
        stack["prov-db-nodes"] = len(hosts)
    preferred = coerce(WATCHER_KEYS["db-servers-prefered-master"], cluster.watcher.get("db-servers-prefered-master"))
    if preferred:
        stack["db-servers-prefered-master"] = preferred[0].url
    if stack.get("prov-orchestrator") == "onpremise" and hosts and "onpremise-hosts" not in stack:
        stack["onpremise-hosts"] = [h.host for h in hosts]
        stack["db-servers-base-port"] = hosts[0].port
    host_keys = ("db-servers-hosts", "db-servers-prefered-master", "db-servers-ignored-hosts")
    for name, value in cluster.watcher.items():   # watcher keys a stack may carry, as given
        if name not in host_keys:
            stack[name] = value
        elif name == "db-servers-ignored-hosts" and value and stack.get("prov-orchestrator") != "onpremise":
            warnings.append(f"{where} {name}: names repman's hosts, not the nodes this stack provisions: "
                            "kept in the watcher YAML only")
    for name, value in stack.items():            # Pulumi config is typed: repman's "a,b" lists as arrays
        key = PROVISIONING_KEYS.get(name) or _WATCHER_TABLES.get(name)
        if key is not None and key.kind in ("strlist", "hostports") and isinstance(value, str):
            stack[name] = [v.strip() for v in value.split(",") if v.strip()]
    return stack


def _stack_credentials(cluster: ImportedCluster, warnings: list[str], where: str) -> None:
    """repman allows one account for both roles (its samples use root twice); a stack creates the
    replication user itself and keeps it apart from the admin, so it gets its own name there."""
    admin = cluster.credentials["db-servers-credential"].split(":", 1)[0]
    user, _, password = cluster.credentials["replication-credential"].partition(":")
    cluster.stack_credentials = dict(cluster.credentials)
    if user == admin:
        cluster.stack_credentials["replication-credential"] = f"repl:{password}"
        warnings.append(f"{where} replication-credential: same user as db-servers-credential; the stack "
                        "creates replication user 'repl' with that password (the watcher YAML keeps yours)")


def _check_stack(cluster: ImportedCluster, where: str, base: Path) -> None:
    """The stack must load as ``up`` will load it: errors now, naming the key, not at deploy time."""
    from repman.spec import load_cluster_spec

    raw = {**cluster.stack, **cluster.stack_credentials}
    try:
        load_cluster_spec({f"repman:{k}": v for k, v in raw.items()}, project_dir=base)
    except ConfigError as exc:
        raise ConfigError(f"{where} stack", str(exc)) from None


def import_repman_config(path: Path | str) -> ImportResult:
    """Read and map a replication-manager configuration; nothing is written."""
    default, sections, _ = read_repman_config(path)
    if not sections:
        raise ConfigError(str(path), "no cluster section (expected [Default] and one [<cluster>] section per cluster)")
    warnings: list[str] = []
    clusters: dict[str, ImportedCluster] = {}
    for name, section in sections.items():
        merged = {**default, **section}
        where = f"[{name}]"
        cluster = _convert(name, merged, where, warnings)
        for required in ("db-servers-hosts",):
            if not cluster.watcher.get(required):
                raise ConfigError(f"{where} {required}", "is required (host[:port] list)")
        for required in _CREDENTIALS:
            if not cluster.credentials.get(required):
                raise ConfigError(f"{where} {required}", "is required (user:password)")
        cluster.stack = _stack_config(cluster, warnings, where)
        _stack_credentials(cluster, warnings, where)
        _check_stack(cluster, where, Path(path).parent)
        clusters[name] = cluster
    # the same warning from [Default] repeats once per cluster: keep each line once
    return ImportResult(clusters, list(dict.fromkeys(warnings)))


# -- writing ---------------------------------------------------------------------------------

def _secret_file(directory: Path, cluster: str, key: str, value: str) -> Path:
    path = directory / f"{cluster}.{key}"
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value + "\n")
    return path


def write_outputs(result: ImportResult, out_dir: Path | str, stacks_dir: Path | str, passphrase: str) -> list[Path]:
    """The watcher YAML (``<out>/repman.yaml``, secrets beside it) and ``Pulumi.<cluster>.yaml`` stacks."""
    from repman.pulumisecrets import new_encryption_salt

    if not passphrase:
        raise ConfigError("db-servers-credential", "the stack files keep it as a Pulumi secret: set "
                          "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)")
    out_dir, stacks_dir = Path(out_dir), Path(stacks_dir)
    secrets_dir = out_dir / "secrets"
    written: list[Path] = []
    docs: dict[Path, dict[str, Any]] = {}
    watcher: dict[str, Any] = {"clusters": {}}
    for name, cluster in result.clusters.items():
        section = dict(cluster.watcher)
        for key in _CREDENTIALS:
            section[key] = {"file": str((secrets_dir / f"{name}.{key}").resolve())}
        watcher["clusters"][name] = section
        salt, crypter = new_encryption_salt(passphrase)
        config = {f"repman:{k}": v for k, v in cluster.stack.items()}
        for key in _CREDENTIALS:
            config[f"repman:{key}"] = {"secure": crypter.encrypt(cluster.stack_credentials[key])}
        docs[stacks_dir / f"Pulumi.{cluster.stack['cluster-name']}.yaml"] = {"encryptionsalt": salt,
                                                                           "config": config}
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    stacks_dir.mkdir(parents=True, exist_ok=True)
    for name, cluster in result.clusters.items():
        for key in _CREDENTIALS:
            written.append(_secret_file(secrets_dir, name, key, cluster.credentials[key]))
    target = out_dir / "repman.yaml"
    target.write_text("# Imported from a replication-manager configuration by `repman config import`.\n"
                      + yaml.safe_dump(watcher, sort_keys=False, default_flow_style=False))
    written.append(target)
    for path, doc in docs.items():
        path.write_text("# Imported from a replication-manager configuration by `repman config import`.\n"
                        + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
        written.append(path)
    return written


# -- SlapOS requests (seed 003) ------------------------------------------------------------------

#: parameters of repman's SlapOS software release that are not repman configuration keys
SLAPOS_PARAMETERS = {
    "database-amount": "prov-db-nodes", "tags": "prov-db-tags", "proxy-tags": "prov-proxy-tags",
}
SLAPOS_IGNORED = {
    "innodb-file-per-table": "the innodb tag already sets innodb_file_per_table",
    "use-ipv6": "addresses come from the SlapOS partitions",
    "autoseed": "re-seeding is decided by autorejoin and its options",
    "proxysql-user": "the SlapOS release's client-facing ProxySQL user; our proxysql-user is the admin user",
}
_SLA_GUID = re.compile(r"^-sla-(\d+)-computer_guid$")


def import_slapos_request(parameters: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``repman-cluster-dict`` of a SlapOS request -> stack keys per cluster (without credentials,
    which the SlapOS instance generates), and the warnings."""
    clusters = parameters.get("repman-cluster-dict")
    if not isinstance(clusters, Mapping) or not clusters:
        raise ConfigError("repman-cluster-dict", "expected a mapping of cluster name -> parameters")
    out: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for name, params in clusters.items():
        where = f"[{name}]"
        stack: dict[str, Any] = {"cluster-name": _stack_cluster_name(str(name)), "prov-orchestrator": "slapos"}
        guids: dict[int, str] = {}
        rest: dict[str, Any] = {}
        for key, value in dict(params).items():
            if key in SLAPOS_PARAMETERS:
                stack[SLAPOS_PARAMETERS[key]] = value
            elif guid := _SLA_GUID.match(key):
                guids[int(guid.group(1))] = str(value)
            elif key in SLAPOS_IGNORED:
                warnings.append(f"{where} {key}: ignored: {SLAPOS_IGNORED[key]}")
            else:
                rest[key] = value
        if guids:
            stack["slapos-computer-guids"] = [guids[i] for i in sorted(guids)]
        converted = _convert(str(name), rest, where, warnings)
        stack.update(converted.stack)
        stack.update(converted.watcher)
        out[str(name)] = stack
    return out, list(dict.fromkeys(warnings))


# -- the key table of docs/REPMAN-KEYS.md ---------------------------------------------------------

#: where our default differs from repman's, and why
DEFAULT_DIFFERENCES = {
    "switchover-wait-route-change": "repman 2 s; ours 0: our routers confirm the change synchronously",
    "prov-db-max-connections": "repman 1000; ours 200 (test machines run many nodes)",
    "prov-db-apply-dynamic-config": "repman off; ours on (the local and SSH backends apply live)",
    "prov-db-tags": "ours: gtidstrict,row,readonly,noquerycache,innodb,smallredolog",
    "prov-proxy-tags": "ours: none",
    "prov-service-plan-registry": "repman: a public URL of its plans; ours: the plans in service_plans/",
    "prov-orchestrator": "repman onpremise; ours local",
    "autorejoin-flashback": "repman off; ours on (flashback keeps a returning master's extra commits saved, "
                            "then undone, instead of a re-seed)",
    "proxysql-port": "repman 3306; ours 6033, ProxySQL's own default, which leaves 3306 to a local node",
    "proxysql-save-to-disk": "repman off; ours on (a restarted ProxySQL keeps the routing)",
    "maxscale-write-port": "repman 3306; ours 4007, MaxScale's usual read-write listener",
    "maxscale-read-port": "repman 3307; ours 4008, MaxScale's usual read-only listener",
    "registry-servers": "repman 127.0.0.1; ours none (Consul is optional)",
    "monitoring-datadir": "repman /usr/local/replication-manager/data; ours ~/.repman",
    "db-servers-credential": "repman root:mariadb; ours required, no default",
    "replication-credential": "repman root:mariadb; ours required, and another user than the admin",
    "haproxy-servers": "repman 127.0.0.1; ours none (HAProxy is optional)",
    "db-servers-prefered-master": "in a stack file: one node index (1-based) or host:port, the node bootstrapped "
                                  "as primary",
}


def _is_ours(name: str) -> bool:
    return name in OUR_OWN_KEYS or name.startswith(OUR_OWN_PREFIXES)


def _row(key: Key, note: str = "") -> str:
    default = "" if key.default in (None, "", []) else f"`{key.default}`"
    kind = key.kind + (f" ({', '.join(key.choices)})" if key.choices else "")
    help_text = key.help.replace("|", "/") + (f"; {note}" if note else "")
    return f"| `{key.name}` | {kind} | {default} | {help_text} |"


def keys_markdown() -> str:
    """docs/REPMAN-KEYS.md, generated from the key tables and the import rules (a test compares)."""
    from repman.api.keys import API_KEYS
    from repman.tags import vocabulary_markdown

    tables = {**PROVISIONING_KEYS, **WATCHER_KEYS, **ROUTING_KEYS}   # the watcher's meaning first
    out = ["# replication-manager keys in repman-python", "",
           "Generated by `python -m repman.config_import --write-doc` from the key tables and the rules of",
           "`repman config import`; do not edit. A key that keeps replication-manager's name keeps its",
           "unit, type and meaning (lists are comma-separated strings or lists; a host without a port is",
           "port 3306; durations in seconds unless the name or help says milliseconds). Where ours works",
           "differently it has a new name and the repman key still means what it means there.", "",
           "## Accepted, same name and meaning", "",
           "| key | type | default | meaning |", "|---|---|---|---|"]
    for name in sorted(tables):
        if not _is_ours(name):
            out.append(_row(tables[name], DEFAULT_DIFFERENCES.get(name, "")))
    out += ["", "## Our own keys (new names; repman has no such key or means something else)", "",
            "| key | type | default | meaning |", "|---|---|---|---|"]
    for name in sorted(tables):
        if _is_ours(name):
            out.append(_row(tables[name]))
    for name in sorted(API_KEYS):
        out.append(_row(API_KEYS[name], "top-level `api:` section of the watcher YAML"))
    out += ["", "## Read under another name by `repman config import`", "",
            "| repman key | imported as | why |", "|---|---|---|"]
    for old, new in sorted(ALIASES.items()):
        out.append(f"| `{old}` | `{new}` | repman's older alias |")
    for old, new in sorted(RENAMED.items()):
        out.append(f"| `{old}` | `{new}` | same meaning, our name |")
    out += ["", "## Refused (when set to true or non-empty)", "", "| repman key | why |", "|---|---|"]
    for name, why in sorted(REFUSED_WHEN_SET.items()):
        out.append(f"| `{name}` | {why} |")
    out += ["", "## Ignored with a warning", "", "| repman key or prefix | why |", "|---|---|"]
    for name, why in sorted(IGNORED.items()):
        out.append(f"| `{name}` | {why} |")
    for prefix, why in sorted(IGNORED_PREFIXES.items()):
        out.append(f"| `{prefix}*` (other keys) | {why} |")
    out += ["| anything else | warning `unknown key, ignored`, with the closest known key when there is one |",
            "", "## Tags (`prov-db-tags`, `prov-proxy-tags`)", "",
            "replication-manager's configurator vocabulary. Platform hints are accepted and recorded; they",
            "choose packages or images in repman and render nothing here. Only contradictions are errors.", "",
            vocabulary_markdown().rstrip(), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m repman.config_import")
    parser.add_argument("--write-doc", action="store_true", help="write docs/REPMAN-KEYS.md")
    args = parser.parse_args(argv)
    if args.write_doc:
        from repman.paths import templates_dir

        path = templates_dir().parent / "docs" / "REPMAN-KEYS.md"
        path.write_text(keys_markdown())
        print(f"wrote {path}")
        return 0
    sys.stdout.write(keys_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

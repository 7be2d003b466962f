"""replication-manager's configurator tag vocabulary: what each tag does here.

repman users carry tag lists from their configs (``prov-db-tags``, ``prov-proxy-tags``)
and from SlapOS requests; every tag repman documents must be accepted. A tag either
renders my.cnf content (a fragment in ``templates/mycnf/tags`` or an
``optimizer_switch`` flag), is a platform/packaging hint (how repman's configurator
picks packages or images: recorded, no my.cnf content), or is accepted without effect
for a stated reason. A tag is an error only when it contradicts another tag or the
cluster itself (asynchronous GTID replication with promotable replicas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from repman.errors import ConfigError

MYCNF, SWITCH, PLATFORM, NOEFFECT = "my.cnf", "optimizer_switch", "platform hint", "no effect here"
PROXYCONF = "proxy config"


@dataclass(frozen=True)
class Tag:
    name: str
    kind: str
    note: str


def _t(kind: str, **notes: str) -> dict[str, Tag]:
    return {name: Tag(name, kind, note) for name, note in notes.items()}


#: tags whose my.cnf content is a fragment ``templates/mycnf/tags/<tag>.cnf.j2``
_FRAGMENT_NOTES = dict(
    gtidstrict="gtid_strict_mode", row="ROW binlog (FULL image unless 'minimal')", semisync="semi-sync AFTER_SYNC",
    innodb="InnoDB, buffer pool 60% of the plan's memory", noquerycache="query cache off",
    readonly="servers start read-only", slow="slow query log", logslow="slow query log (alias of slow)",
    pfs="performance schema", logpfs="performance schema (alias of pfs)", compressbinlog="log_bin_compress",
    utctime="time_zone UTC", readcommitted="READ-COMMITTED", readdirty="READ-UNCOMMITTED",
    readsnapshot="REPEATABLE-READ", readserialized="SERIALIZABLE", bm4ci="utf8mb4_unicode_ci",
    bm4cs="utf8mb4_bin", utf8ci="utf8mb3_general_ci", utf8cs="utf8mb3_bin",
    nohandshake="skip the client's character set handshake", ssl="TLS with the cluster CA",
    nodurable="flush once a second", durable="flush every commit", smallredolog="48M redo log",
    threadpool="pool-of-threads", sqlerror="sql_errlog plugin (SQL errors logged)",
    diskmonitor="disks plugin (information_schema.DISKS)", audit="server_audit plugin",
    loggeneral="general query log", logtotable="logs to tables", metadatalocks="metadata_lock_info plugin",
    nologdeadlocks="innodb_print_all_deadlocks off", nologslowddlqueries="slow log without admin statements",
    nologslowqueries="slow query log off", nologslowslavequeries="slow log without replicated statements",
    nowarnings="log_warnings 0", userstats="userstat on", autodefrag="innodb_defragment",
    compresstables="InnoDB page compression by default", nodoublewrite="innodb_doublewrite off",
    noadaptatiiveflush="innodb_adaptive_flushing off (repman's spelling)", noodirect="innodb_flush_method fsync",
    ssd="SSD I/O capacity, no neighbour flushing", zfs="ZFS: no doublewrite, no neighbour flushing",
    archive="ARCHIVE engine", blachole="BLACKHOLE engine (repman's spelling)", connect="CONNECT engine",
    mroonga="Mroonga full-text engine", myrocks="MyRocks engine", oqgraph="OQGRAPH engine", s3="S3 engine",
    sphinx="SphinxSE engine", spider="Spider engine", ed25519="ed25519 authentication plugin",
    pwdcheckcracklib="cracklib password check plugin", pwdchecksimple="simple password check plugin",
    localinfile="LOAD DATA LOCAL allowed", nobind="listen on every address", resolvdns="resolve client names",
    aggressive="parallel replication, aggressive", optimistic="parallel replication, optimistic",
    serialize="no parallel replication", minimal="MINIMAL row image", statement="STATEMENT binlog",
    idempotent="slave_exec_mode IDEMPOTENT", lossyconv="lossy and non-lossy type conversions",
    noalter2phase="binlog_alter_two_phase off", trustfunctioncreators="log_bin_trust_function_creators",
    noslavestart="skip_slave_start", nosyncbinlog="sync_binlog 0", eits="engine-independent statistics",
    histograms="histograms collected", trace="optimizer trace", noautocommit="autocommit off",
    nodeadlockdetect="innodb_deadlock_detect off", noforcepk="innodb_force_primary_key off",
    sqlmodeoracle="sql_mode ORACLE", sqlmodeunstrict="sql_mode empty (not strict)",
    lowercasetable="lower_case_table_names 1", nointosubquery="IN lists never converted to subqueries",
)

#: tags that set one ``optimizer_switch`` flag; all of them render into one line
OPTIMIZER_SWITCH = {
    "firstmatch": "firstmatch=on", "hashjoin": "join_cache_hashed=on",
    "imsi": "index_merge_sort_intersection=on", "loosescan": "loosescan=on",
    "nobloomfilter": "rowid_filter=off", "nodcp": "condition_pushdown_for_derived=off",
    "noderivedmerge": "derived_merge=off", "noderivedwithkeys": "derived_with_keys=off",
    "nohcp": "condition_pushdown_from_having=off", "noicp": "index_condition_pushdown=off",
    "nointoexists": "in_to_exists=off", "nolateralderived": "split_materialized=off", "nomrr": "mrr=off",
    "noouterjoincache": "outer_join_with_cache=off", "noscp": "condition_pushdown_for_subquery=off",
    "notableelimination": "table_elimination=off", "semijoincache": "semijoin_with_cache=on",
    "subquerycache": "subquery_cache=on", "nestedjoin": "join_cache_bka=on",
}

DB_TAGS: dict[str, Tag] = {
    **{n: Tag(n, MYCNF, note) for n, note in _FRAGMENT_NOTES.items()},
    **{n: Tag(n, SWITCH, flag) for n, flag in OPTIMIZER_SWITCH.items()},
    **_t(PLATFORM,
         docker="runs in a container image (docker, kube, opensvc backends)",
         pkg="runs from the distribution's packages (local, onpremise backends)",
         linux="Linux host", osx="macOS host", deb="Debian packages", rpm="RPM packages"),
    **_t(NOEFFECT,
         bind="nodes always bind to their own address (prov-db-host)",
         nosplitpath="datadir, binlogs and logs already share one node directory",
         splitundolog="undo tablespaces are fixed when a datadir is created; not changed on live nodes",
         notmpdisk="temporary space is sized by prov-db-docker-tmpfs-size on container backends",
         interleave="NUMA interleaving is a launcher option of the host, not my.cnf",
         proxyprotocol="proxy_protocol_networks depends on the proxies' addresses; set it per host",
         keyfileencrypt="encryption at rest needs a key management setup repman does not provision here",
         multidomains="the GTID domain comes from prov-db-domain",
         sequence="the SEQUENCE engine is built into MariaDB",
         noecp="engine condition pushdown has no switch in MariaDB 10.11",
         tokudb="TokuDB was removed from MariaDB in 10.6",
         mcs="ColumnStore is a separate product, not provisioned here"),
}

#: tags that contradict the cluster itself: asynchronous GTID replication with promotable replicas
CLUSTER_CONTRADICTIONS = {
    "nobinlog": "replicas must keep a binlog to be promoted",
    "nologslaveupdates": "replicas must log replicated updates (log_slave_updates) to be promoted",
    "nologslavestatement": "replicas must log replicated updates to be promoted",
    "wsrep": "Galera (wsrep) is another topology than GTID master/replicas",
    "grouprep": "MySQL group replication is another topology than GTID master/replicas",
    "mysqlgtid": "MySQL GTIDs; these clusters run MariaDB GTIDs",
    "noauth": "skip-grant-tables would open every node without credentials",
}

#: groups of tags of which at most one may be given
DB_EXCLUSIVE: tuple[tuple[str, ...], ...] = (
    ("durable", "nodurable"), ("durable", "nosyncbinlog"), ("row", "statement"),
    ("readcommitted", "readdirty", "readsnapshot", "readserialized"),
    ("bm4ci", "bm4cs", "utf8ci", "utf8cs"), ("aggressive", "optimistic", "serialize"),
    ("slow", "nologslowqueries"), ("logslow", "nologslowqueries"), ("sqlmodeoracle", "sqlmodeunstrict"),
    ("docker", "pkg"), ("deb", "rpm"), ("linux", "osx"), ("bind", "nobind"),
)

PROXY_TAGS: dict[str, Tag] = {
    **_t(PROXYCONF,
         masterslave="writes to the primary, reads to the replicas",
         readwritesplit="split reads from writes", noreadwritesplit="no read/write split",
         ssl="TLS on the proxy's client side",
         readonmaster="the primary also serves reads when no replica can (sets haproxy-read-on-master)"),
    **_t(PLATFORM, docker="proxy in a container", pkg="proxy from packages", linux="Linux host",
         osx="macOS host", deb="Debian packages", rpm="RPM packages"),
    **_t(NOEFFECT, nonetworkcompress="no compression between proxy and backends is already the default",
         sphinx="Sphinx search daemon next to the proxy: not provisioned by these backends"),
}
PROXY_CONTRADICTIONS = {
    "multimaster": "multi-master routing is another topology than GTID master/replicas",
    "wsrep": "Galera (wsrep) routing is another topology than GTID master/replicas",
}
PROXY_EXCLUSIVE = (("readwritesplit", "noreadwritesplit"), ("docker", "pkg"), ("deb", "rpm"), ("linux", "osx"))
#: what a proxy does when the stack gives no proxy tags
DEFAULT_PROXY_TAGS = ("masterslave", "readwritesplit")


def check_tags(tags: Iterable[object], vocabulary: dict[str, Tag], contradictions: dict[str, str],
               exclusive: Sequence[tuple[str, ...]], key: str) -> list[str]:
    """De-duplicate in order; an unknown tag, or one contradicting another or the cluster, is an error."""
    seen: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ConfigError(key, f"a tag must be a string, got {tag!r}")
        if tag in contradictions:
            raise ConfigError(key, f"tag {tag!r} contradicts this cluster: {contradictions[tag]}")
        if tag not in vocabulary:
            raise ConfigError(key, f"unknown tag {tag!r} (known: {', '.join(sorted(vocabulary))})")
        if tag not in seen:
            seen.append(tag)
    for group in exclusive:
        present = [t for t in group if t in seen]
        if len(present) > 1:
            raise ConfigError(key, f"tags {present[0]!r} and {present[1]!r} contradict each other")
    return seen


def validate_proxy_tags(tags: Iterable[object], key: str = "prov-proxy-tags") -> list[str]:
    """The one check of proxy tags: the stack spec, every proxy's config and the Nix schema use it."""
    return check_tags(tags, PROXY_TAGS, PROXY_CONTRADICTIONS, PROXY_EXCLUSIVE, key)


def optimizer_switch(tags: Sequence[str]) -> str:
    """The combined ``optimizer_switch`` value of the tags that set one flag, or ''."""
    return ",".join(OPTIMIZER_SWITCH[t] for t in tags if t in OPTIMIZER_SWITCH)


def vocabulary_markdown() -> str:
    """The tag tables for docs/REPMAN-KEYS.md."""
    lines = ["| database tag | what it does here |", "|---|---|"]
    for tag in sorted(DB_TAGS.values(), key=lambda t: (t.kind, t.name)):
        lines.append(f"| `{tag.name}` | {tag.kind}: {tag.note} |")
    for name, why in sorted(CLUSTER_CONTRADICTIONS.items()):
        lines.append(f"| `{name}` | refused: {why} |")
    lines += ["", "| proxy tag | what it does here |", "|---|---|"]
    for tag in sorted(PROXY_TAGS.values(), key=lambda t: (t.kind, t.name)):
        lines.append(f"| `{tag.name}` | {tag.kind}: {tag.note} |")
    for name, why in sorted(PROXY_CONTRADICTIONS.items()):
        lines.append(f"| `{name}` | refused: {why} |")
    return "\n".join(lines) + "\n"

"""A real cluster for HA tests and benchmarks: a Testbed with watcher settings and convergence checks.

The recording writer lives in ``repman.lab.writer`` (tests and bench share it); it follows
the primary by itself (the one writable server that is no replica), so it needs
no proxy. At the end ``lost`` (acknowledged but missing)
and ``unexpected`` (present but never sent or with unknown outcome) must both be
empty, Jepsen-style. ``HACluster`` wraps a real ``Testbed`` with a watcher config,
a state store and helpers to check that every node converged (same GTID position,
same checksums).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from repman.db import Credential, ServerAddress, connect, query
from repman.gtid import GtidPosition
from repman.lab.writer import Writer
from repman.local.testbed import DEFAULT_TAGS, Testbed
from repman.watcher.checks import read_states
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.config import load_cluster
from repman.watcher.primary import cluster_primary
from repman.watcher.state_store import StateStore
from testkit.polling import wait_until


@dataclass
class HACluster:
    """A real cluster with its watcher settings, state store and an operation log."""

    bed: Testbed
    cfg: ClusterConfig
    store: StateStore
    lines: list[str] = field(default_factory=list)

    @property
    def servers(self) -> list[ServerAddress]:
        return self.bed.addresses

    def log(self, message: str) -> None:
        self.lines.append(message)

    def set(self, **settings: Any) -> None:
        """Change settings; keyword ``failover_limit`` stands for key ``failover-limit``."""
        for key, value in settings.items():
            self.cfg.values[key.replace("_", "-")] = value

    def primary(self) -> ServerAddress:
        found = cluster_primary(self.cfg, read_states(self.cfg))
        assert found.address is not None and found.decided, found.reason
        return found.address

    def replicas(self) -> list[ServerAddress]:
        p = self.primary()
        return [a for a in self.servers if a != p]

    def sql(self, address: ServerAddress, statement: str, args: Any = None) -> list[dict]:
        with connect(address, self.bed.admin, timeout=3, read_timeout=60) as conn:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall() or [])

    def var(self, address: ServerAddress, name: str) -> str:
        return str(self.sql(address, f"SELECT @@GLOBAL.{name} AS v")[0]["v"])

    def writer(self, name: str = "w", pause: float = 0.002, credential: Credential | None = None) -> Writer:
        Writer.prepare(self.primary(), self.bed.admin)
        return Writer(self.servers, credential or self.bed.admin, pause=pause, name=name)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
        wait_until(predicate, timeout, what=what, every=0.05)

    def assert_converged(self, servers: Iterable[ServerAddress] | None = None, timeout: float = 60.0) -> ServerAddress:
        """Every server replicates from the primary, at its GTID position, with equal checksums."""
        members = list(servers if servers is not None else self.servers)
        primary = self.primary()
        assert primary in members
        target = self.var(primary, "gtid_binlog_pos")
        for addr in members:
            if addr == primary:
                continue
            with connect(addr, self.bed.admin, timeout=3, read_timeout=timeout + 10) as conn:
                w = query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, timeout))[0]["w"]
                status = query(conn, "SHOW SLAVE STATUS")
            assert w == 0, f"{addr.url} did not reach {target}: {status}"
            assert status and status[0]["Slave_IO_Running"] == "Yes" and status[0]["Slave_SQL_Running"] == "Yes", \
                f"{addr.url} replication not healthy: {status}"
            assert int(status[0]["Master_Port"]) == primary.port, f"{addr.url} follows {status[0]['Master_Port']}"
        expected = GtidPosition.parse(target)
        for addr in members:
            pos = GtidPosition.parse(self.var(addr, "gtid_current_pos"))
            assert pos == expected, f"{addr.url} at {pos}, primary {primary.url} at {expected}"
        tables = self.sql(primary, (
            "SELECT CONCAT('`', table_schema, '`.`', table_name, '`') AS t FROM information_schema.tables "
            "WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys') "
            "AND table_type = 'BASE TABLE' ORDER BY 1"))
        names = [r["t"] for r in tables]
        ref = checksums(self, primary, names)
        for addr in members:
            got = checksums(self, addr, names)
            assert got == ref, f"{addr.url} differs from {primary.url}: {got} != {ref}"
            schemas = {r["s"] for r in self.sql(addr, (
                "SELECT CONCAT('`', table_schema, '`.`', table_name, '`') AS s FROM information_schema.tables "
                "WHERE table_schema NOT IN ('mysql','information_schema','performance_schema','sys') "
                "AND table_type = 'BASE TABLE'"))}
            assert schemas == set(names), f"{addr.url} has tables {sorted(schemas)} vs {names}"
        return primary


def checksums(cluster: HACluster, address: ServerAddress, tables: list[str]) -> dict[str, int]:
    """CHECKSUM TABLE of ``tables`` on one server: equal everywhere means converged data."""
    if not tables:
        return {}
    rows = cluster.sql(address, "CHECKSUM TABLE " + ", ".join(tables))
    return {r["Table"]: r["Checksum"] for r in rows}


def make_cluster(base: Path, count: int = 3, semisync: bool = False, tags: Iterable[str] = DEFAULT_TAGS,
                 preferred: int | None = None, **settings: Any) -> HACluster:
    """Create, bootstrap and configure a real cluster; the caller destroys ``cluster.bed``."""
    all_tags = list(tags) + (["semisync"] if semisync and "semisync" not in tags else [])
    bed = Testbed.create(base / "db", count=count, tags=all_tags)
    try:
        pref = bed.addresses[preferred] if preferred is not None else None
        bed.bootstrap(semisync=semisync, preferred=pref)
        raw: dict[str, Any] = {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(base / "state"),
            "semisync": semisync,
            "switchover-wait-kill": 2000,
            "switchover-wait-trx": 5,
        }
        if pref is not None:
            raw["db-servers-prefered-master"] = pref.url
        raw.update({k.replace("_", "-"): v for k, v in settings.items()})
        cfg = load_cluster("test", raw)
        store = StateStore(cfg.state_dir, keep=int(cfg["crash-records-keep"]))
        return HACluster(bed, cfg, store)
    except BaseException:
        bed.destroy()
        raise


def raw_section(c: HACluster, **keys: Any) -> dict[str, Any]:
    """The cluster section of ``c`` as raw keys (to load it again with other settings)."""
    raw = {"db-servers-hosts": [a.url for a in c.cfg.servers],
           "db-servers-credential": f"{c.bed.admin.user}:{c.bed.admin.password}",
           "replication-credential": f"{c.bed.replication.user}:{c.bed.replication.password}",
           "monitoring-datadir": str(c.cfg.state_dir.parent)}
    raw.update(keys)
    return raw

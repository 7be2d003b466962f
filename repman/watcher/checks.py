"""Facts and guards an HA operation needs before it touches anything.

Reading every server in parallel keeps a switchover's first step in the
milliseconds; the guards (long writes, open transactions, FLUSH TABLES) refuse
early, while nothing has changed yet.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import pymysql

from repman.db import Credential, ServerAddress, connect, execute, query
from repman.errors import RepmanError
from repman.topology import ServerState, read_state
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server


def read_states(cfg: ClusterConfig, servers: Iterable[ServerAddress] | None = None,
                timeout: float = 1.0) -> dict[ServerAddress, ServerState]:
    """One snapshot per server, read concurrently."""
    addrs = list(servers if servers is not None else cfg.servers)
    if not addrs:
        return {}
    with ThreadPoolExecutor(max_workers=len(addrs)) as pool:
        states = list(pool.map(lambda a: read_state(a, cfg.admin, timeout=timeout), addrs))
    return dict(zip(addrs, states))


def member(cfg: ClusterConfig, address: ServerAddress | None) -> ServerAddress | None:
    """The configured server matching ``address`` (loopback spellings are one host)."""
    if address is None:
        return None
    return next((a for a in cfg.servers if same_server(a, address)), None)


def in_maintenance(cfg: ClusterConfig, urls: Iterable[str]) -> list[ServerAddress]:
    """The configured servers an operator put in maintenance (urls from the state store)."""
    out = []
    for url in urls:
        try:
            found = member(cfg, ServerAddress.parse(url))
        except RepmanError:
            continue
        if found is not None:
            out.append(found)
    return out


def master_of(cfg: ClusterConfig, state: ServerState) -> ServerAddress | None:
    """The cluster server ``state`` replicates from, if any."""
    if not state.reachable or state.replica is None:
        return None
    return member(cfg, state.replica.master)


def find_master(cfg: ClusterConfig, states: dict[ServerAddress, ServerState]) -> tuple[ServerAddress | None, str]:
    """The current primary, or None with the reason it cannot be told.

    The primary is the root the replicas point at; when nobody replicates, the one
    writable server that is no replica. Two writable roots is a split brain: refuse.
    """
    pointed = Counter(m for m in (master_of(cfg, s) for s in states.values()) if m is not None)
    roots = [m for m in pointed if m not in states or master_of(cfg, states[m]) is None] if pointed else []
    if not roots:
        roots = [a for a, s in states.items() if s.reachable and s.replica is None and not s.read_only]
        if len(roots) == 1:
            return roots[0], ""
        if not roots:
            return None, "no server is the master (nobody replicates and no server is writable)"
        return None, "several writable servers and no replication: " + ", ".join(r.url for r in sorted(roots))
    if len(roots) == 1:
        return roots[0], ""
    known = [r for r in roots if r in states]
    writable = [r for r in known if states[r].reachable and not states[r].read_only and states[r].replica is None]
    if len(writable) == 1:
        return writable[0], ""
    if not writable:
        # Replicas split between a dead old master and the new one: the live root wins.
        live = [r for r in known if states[r].reachable]
        if len(live) == 1:
            return live[0], ""
        best = max(roots, key=lambda r: pointed[r])
        if list(pointed.values()).count(pointed[best]) == 1:
            return best, ""
    return None, "replicas follow several masters: " + ", ".join(r.url for r in sorted(roots))


def find_dead_master(cfg: ClusterConfig, states: dict[ServerAddress, ServerState]) -> tuple[ServerAddress | None, str]:
    """The master the replicas lost, for a failover."""
    pointed = Counter(m for m in (master_of(cfg, s) for s in states.values()) if m is not None)
    if not pointed:
        return None, "no replica follows a cluster server: nothing to fail over"
    dead = [m for m in pointed if not states[m].reachable]
    if not dead:
        live, _ = find_master(cfg, states)
        shown = live.url if live else ", ".join(m.url for m in pointed)
        return None, f"the master {shown} answers: failover refused (use switchover)"
    best = max(dead, key=lambda m: pointed[m])
    return best, ""


def replicas_of(cfg: ClusterConfig, states: dict[ServerAddress, ServerState],
                master: ServerAddress) -> list[ServerAddress]:
    return [a for a, s in states.items() if same_server(master_of(cfg, s), master)]


def long_writes(conn: pymysql.connections.Connection, threshold: float) -> list[str]:
    """Writes running, or transactions open, for at least ``threshold`` seconds."""
    found: list[str] = []
    rows = query(conn, (
        "SELECT ID, USER, TIME_MS, LEFT(INFO, 60) AS INFO FROM information_schema.PROCESSLIST "
        "WHERE COMMAND = 'Query' AND ID <> CONNECTION_ID() AND TIME_MS >= %s "
        "AND USER NOT IN ('system user', 'event_scheduler') "
        "AND INFO IS NOT NULL AND TRIM(INFO) NOT LIKE 'select%%'"), (threshold * 1000.0,))
    for r in rows:
        found.append(f"query {r['INFO']!r} of thread {r['ID']} running for {float(r['TIME_MS']) / 1000:.1f}s")
    rows = query(conn, (
        "SELECT trx_mysql_thread_id AS ID, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS AGE "
        "FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID() "
        "AND trx_started <= NOW() - INTERVAL %s MICROSECOND"), (int(threshold * 1_000_000),))
    for r in rows:
        found.append(f"transaction of thread {r['ID']} open for {r['AGE']}s")
    return found


def flush_tables(address: ServerAddress, credential: Credential, timeout: float) -> str | None:
    """``FLUSH NO_WRITE_TO_BINLOG TABLES`` within ``timeout``; the refusal reason otherwise."""
    conn = connect(address, credential, timeout=2, read_timeout=max(timeout, 0.1))
    thread = conn.thread_id()
    try:
        execute(conn, "FLUSH NO_WRITE_TO_BINLOG TABLES")
        return None
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in (2013, 2006):
            try:
                with connect(address, credential, timeout=2) as killer:
                    execute(killer, f"KILL QUERY {int(thread)}")
            except pymysql.MySQLError:
                pass
            return f"FLUSH TABLES on {address.url} did not finish within switchover-wait-trx {timeout:g}s"
        raise
    finally:
        try:
            conn.close()
        except pymysql.MySQLError:
            pass

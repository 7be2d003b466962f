"""Post-deploy bootstrap: users, GTID replication, read-only replicas, semi-sync roles.

Safe to repeat. Against a live cluster it only fills what is missing (a user, a
new replica): it never runs ``RESET MASTER`` on a server holding data, keeps the
current primary when it has moved since (a failover), and refuses servers whose
data diverges from the primary's.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pymysql

from repman.db import Credential, ServerAddress, connect, execute, execute_unlogged, query, session
from repman.errors import BootstrapError
from repman.password_hash import native_password_hash
from repman.resize import hand_over, leaving_primary
from repman.seeding import SeedRequest, SeedResult, needs_seed, oldest_binlog_gtids, seed_node
from repman.topology import ServerState, read_state
from repman.watcher.primary import replicated_primary

Progress = Callable[[str], None]
# A semi-sync master waits for a replica's acknowledgement "forever" (~49 days) and also
# with no replica connected: the server never falls back to asynchronous commits by
# itself, so a deposed master cannot acknowledge a write; the watcher alone decides
# (failover-semisync-async-fallback).
SEMISYNC_NO_FALLBACK_MS = 4294967295


def replica_net_timeout(heartbeat: float) -> int:
    """slave_net_timeout for a heartbeat period: a frozen or cut-off master is lost after two
    missed heartbeats (1 s at the default 0.5 s), so that every replica agrees it is gone
    within the watcher's ping window. It is also the IO thread's connect timeout: a
    failover's STOP SLAVE IO_THREAD waits at most that long for a reconnect to a frozen master."""
    return max(1, math.ceil(2 * heartbeat))


@dataclass
class BootstrapRequest:
    servers: Sequence[ServerAddress]
    admin: Credential
    replication: Credential
    monitoring: Credential | None = None
    preferred_master: ServerAddress | None = None
    semisync: bool = False
    readonly_replicas: bool = True
    replication_ssl: bool = False  # replication-use-ssl: verified TLS between replicas and the primary
    heartbeat_period: float = 0.5       # with slave_net_timeout 1 s: a hung master is lost in ~1 s
    connect_retry: int = 1
    sysbench_table_size: int = 0
    load_sql: Sequence[str] = ()      # prov-db-load-sql: run once on the primary after bootstrap
    load_csv: Sequence[str] = ()      # prov-db-load-csv
    wait_timeout: float = 60.0
    progress: Progress = field(default=lambda msg: None)
    # Seed a joining node that cannot replicate from the primary's binlogs (purged,
    # error 1236) with a physical copy (repman.seeding); only where nodes are local.
    seed_local: bool = False
    # Or any other way to seed one node (SSH hosts: repman.backends.ssh_seed); tried first.
    seeder: Callable[[SeedRequest], SeedResult] | None = None
    # The watcher's cluster name and monitoring-datadir: the switchovers bootstrap runs (scale-in,
    # rolling restart) then take the watcher's operation lock and land in its crash records.
    cluster_name: str = "bootstrap"
    monitoring_datadir: str = ""


@dataclass
class BootstrapResult:
    primary: ServerAddress
    replicas: list[ServerAddress]
    actions: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def _states(req: BootstrapRequest) -> dict[ServerAddress, ServerState]:
    states = {a: read_state(a, req.admin, timeout=3) for a in req.servers}
    down = [s for s in states.values() if not s.reachable]
    if down:
        raise BootstrapError(f"cannot reach {down[0].address.url}: {down[0].error}")
    return states


def current_primary(states: dict[ServerAddress, ServerState]) -> ServerAddress | None:
    """The server the others already replicate from, when the cluster is live (no watcher records)."""
    found = replicated_primary(states, list(states))
    if found.rule == "tie":
        raise BootstrapError(f"servers replicate from several primaries: {found.reason}")
    return found.address


def choose_primary(req: BootstrapRequest, states: dict[ServerAddress, ServerState]) -> tuple[ServerAddress, bool]:
    """Return (primary, cluster_was_live)."""
    live = current_primary(states)
    if live is not None:
        return live, True
    if req.preferred_master is not None:
        if req.preferred_master not in states:
            raise BootstrapError(f"db-servers-prefered-master {req.preferred_master.url} is not a cluster server")
        return req.preferred_master, False
    return req.servers[0], False


def check_divergence(primary: ServerState, others: Sequence[ServerState]) -> None:
    """Refuse a server that holds transactions the primary lacks."""
    pos = primary.current_pos
    for s in others:
        ahead = s.binlog_pos.ahead_of(pos)
        if ahead:
            raise BootstrapError(
                f"{s.address.url} holds transactions the primary {primary.address.url} lacks "
                f"({', '.join(ahead)}): diverging data, refusing to bootstrap"
            )


def _can_login(address: ServerAddress, cred: Credential) -> bool:
    try:
        connect(address, cred, timeout=3).close()
        return True
    except pymysql.MySQLError:
        return False


def ensure_users(req: BootstrapRequest, primary: ServerAddress, actions: list[str]) -> set[str]:
    """Replication and monitoring users with least privileges, created on the primary.

    Returns the users created or whose password changed (replicas then re-read theirs)."""
    changed: set[str] = set()
    wanted = [(req.replication, ["REPLICATION SLAVE", "SLAVE MONITOR"])]
    if req.monitoring is not None:
        wanted.append((req.monitoring, ["PROCESS", "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR"]))
    with session(primary, req.admin, timeout=5) as conn:
        for cred, privileges in wanted:
            exists = query(conn, "SELECT 1 FROM mysql.user WHERE User=%s AND Host='%%'", (cred.user,))
            if exists and _can_login(primary, cred):
                continue
            # Only the hash travels: the statement is binlogged so every replica (a future
            # primary) has the user, and the binlog must not hold the clear password.
            hashed = native_password_hash(cred.password)
            execute(conn, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY PASSWORD %s", (cred.user, hashed))
            execute(conn, "ALTER USER %s@'%%' IDENTIFIED BY PASSWORD %s", (cred.user, hashed))
            execute(conn, f"GRANT {', '.join(dict.fromkeys(privileges))} ON *.* TO %s@'%%'", (cred.user,))
            actions.append(f"created user {cred.user} on {primary.url}")
            changed.add(cred.user)
    return changed


def _set_semisync(conn: pymysql.connections.Connection, master: bool, slave: bool) -> None:
    """Semi-sync roles; with semi-sync on, every server (a replica is a future master) gets the
    no-fallback settings, which the watcher's promotion leaves as they are."""
    if master or slave:
        execute(conn, f"SET GLOBAL rpl_semi_sync_master_timeout = {SEMISYNC_NO_FALLBACK_MS}")
        execute(conn, "SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON")
    execute(conn, f"SET GLOBAL rpl_semi_sync_master_enabled = {'ON' if master else 'OFF'}")
    execute(conn, f"SET GLOBAL rpl_semi_sync_slave_enabled = {'ON' if slave else 'OFF'}")


def change_master_sql(master: ServerAddress, repl: Credential, heartbeat: float, retry: int,
                      tls_ca: str = "") -> tuple[str, tuple]:
    """With ``tls_ca`` (a path on the replica) the replica verifies the master's certificate and host."""
    tls = ", MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1" if tls_ca else ""
    return (
        "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
        f"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY={int(retry)}, "
        f"MASTER_HEARTBEAT_PERIOD={float(heartbeat)}" + tls,
        (master.host, master.port, repl.user, repl.password) + ((tls_ca,) if tls_ca else ()),
    )


def replica_tls_ca(conn: pymysql.connections.Connection, wanted: bool) -> str:
    """The replica's own ``ssl_ca`` (the cluster CA, ssl tag) when replication over TLS is wanted."""
    if not wanted:
        return ""
    ca = query(conn, "SELECT @@GLOBAL.ssl_ca AS ca")[0]["ca"]
    if not ca:
        raise BootstrapError("replication-use-ssl is on but the replica has no ssl_ca (the ssl tag sets it)")
    return str(ca)


def attach_replica(
    address: ServerAddress, state: ServerState, master: ServerAddress, req: BootstrapRequest,
) -> None:
    with session(address, req.admin, timeout=5) as conn:
        execute(conn, "STOP SLAVE")
        if not state.gtid_slave_pos and state.gtid_binlog_pos:
            # Its own history is a prefix of the primary's: resume after it.
            execute(conn, "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos")
        execute(conn, f"SET GLOBAL slave_net_timeout = {replica_net_timeout(req.heartbeat_period)}")
        sql, args = change_master_sql(master, req.replication, req.heartbeat_period, req.connect_retry,
                                      replica_tls_ca(conn, req.replication_ssl))
        execute_unlogged(conn, sql, args)
        _set_semisync(conn, master=False, slave=req.semisync)
        if req.readonly_replicas:
            execute(conn, "SET GLOBAL read_only = ON")
        execute(conn, "START SLAVE")


def wait_replicas(req: BootstrapRequest, primary: ServerAddress, replicas: Sequence[ServerAddress]) -> None:
    with session(primary, req.admin, timeout=5) as conn:
        target = query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or ""
    for r in replicas:
        with session(r, req.admin, timeout=5, read_timeout=req.wait_timeout + 5) as conn:
            res = query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, req.wait_timeout))[0]["w"]
            if res != 0:
                state = read_state(r, req.admin)
                err = state.replica.last_io_error or state.replica.last_sql_error if state.replica else ""
                raise BootstrapError(f"{r.url} did not reach {target} within {req.wait_timeout:.0f}s {err}".strip())


def prepare_sysbench(req: BootstrapRequest, primary: ServerAddress, actions: list[str]) -> None:
    with session(primary, req.admin) as conn:
        execute(conn, "CREATE DATABASE IF NOT EXISTS sbtest")
        if query(conn, "SELECT 1 FROM information_schema.tables WHERE table_schema='sbtest' AND table_name='sbtest1'"):
            return
    if shutil.which("sysbench") is None:
        raise BootstrapError("sysbench table requested but the sysbench command is not installed")
    # The password goes through a 0600 options file, never the command line (/proc/<pid>/cmdline).
    with tempfile.NamedTemporaryFile("w", prefix="repman-sysbench-", suffix=".cfg") as opts:
        opts.write(f"mysql-password={req.admin.password}\n")
        opts.flush()
        cmd = [
            "sysbench", "oltp_read_write", f"--config-file={opts.name}", f"--mysql-host={primary.host}",
            f"--mysql-port={primary.port}", f"--mysql-user={req.admin.user}", "--mysql-db=sbtest",
            "--tables=1", f"--table-size={req.sysbench_table_size}", "prepare",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BootstrapError(f"sysbench prepare failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    actions.append(f"sysbench table sbtest1 ({req.sysbench_table_size} rows) on {primary.url}")


@contextmanager
def _watcher_lock(req: BootstrapRequest, what: str) -> Iterator[None]:
    """Hold the running watcher's operation lock while ``what`` works on a node: its monitor
    would otherwise rejoin the returning node (CHANGE MASTER, START SLAVE) in the middle of
    the seeding's own attach."""
    if not req.monitoring_datadir:
        yield
        return
    from repman.watcher.oplock import OperationLock

    lock = OperationLock(Path(req.monitoring_datadir) / req.cluster_name)   # as ClusterConfig.state_dir
    if not lock.acquire(what, timeout=30.0):
        raise BootstrapError(f"{what}: the watcher is busy with {lock.holder() or 'an operation'}; "
                             "the next up retries")
    try:
        yield
    finally:
        lock.release()


def seed_joining_node(req: BootstrapRequest, primary: ServerAddress, node: ServerAddress,
                      reason: str, actions: list[str]) -> None:
    """Seed a node the primary's binlogs cannot bring up to date, or say why it cannot be."""
    if not req.seed_local and req.seeder is None:
        raise BootstrapError(f"{node.url} cannot replicate from {primary.url}: {reason}; "
                             "seeding it needs a physical copy, not available on this backend")
    req.progress(f"{node.url} cannot replicate from binlogs ({reason}): seeding it")
    with _watcher_lock(req, f"seeding {node.url}"):
        result = (req.seeder or seed_node)(SeedRequest(
            target=node, primary=primary, members=req.servers, admin=req.admin, replication=req.replication,
            semisync=req.semisync, heartbeat_period=req.heartbeat_period, connect_retry=req.connect_retry,
            wait_timeout=req.wait_timeout, progress=req.progress, replication_ssl=req.replication_ssl,
        ))
    actions.append(f"seeded {node.url} from {result.source.url} at {result.gtid} "
                   f"({result.bytes_copied / 2**20:.0f} MiB)")


def bootstrap(req: BootstrapRequest) -> BootstrapResult:
    """Wire the cluster; returns what was done (empty when it was already wired)."""
    if not req.servers:
        raise BootstrapError("no servers to bootstrap")
    started = time.monotonic()
    states = _states(req)
    leaving = leaving_primary(states, req.admin)
    handed: list[str] = []
    if leaving is not None:
        req.progress(f"the primary {leaving.url} leaves the cluster: switching over first")
        moved = hand_over(leaving, req.servers, req.admin, req.replication, req.semisync,
                          req.preferred_master, req.progress, req.cluster_name, req.monitoring_datadir)
        req.progress(f"switched over from {leaving.url} to {moved.url}")
        handed.append(f"switched the primary over from leaving {leaving.url} to {moved.url}")
        states = _states(req)
    primary, live = choose_primary(req, states)
    others = [a for a in req.servers if a != primary]
    # Read the primary again after the others: a replica read after an earlier primary
    # read may be ahead of it while writes flow, which is not divergence.
    fresh = read_state(primary, req.admin, timeout=3)
    check_divergence(fresh if fresh.reachable else states[primary], [states[a] for a in others])
    actions: list[str] = handed
    req.progress(f"primary {primary.url} ({'kept: cluster is live' if live else 'chosen'})")
    changed_users = ensure_users(req, primary, actions)
    with session(primary, req.admin) as conn:
        if states[primary].replica is not None:
            execute(conn, "STOP SLAVE")
            execute(conn, "RESET SLAVE ALL")
            actions.append(f"cleared stale replication on {primary.url}")
        if states[primary].read_only:
            execute(conn, "SET GLOBAL read_only = OFF")
            actions.append(f"opened {primary.url} for writes")
        if states[primary].semisync_master != req.semisync or states[primary].semisync_slave:
            _set_semisync(conn, master=req.semisync, slave=False)
    oldest = oldest_binlog_gtids(primary, req.admin)
    to_seed: list[tuple[ServerAddress, str]] = []
    for a in others:
        s = states[a]
        wired = (s.replica is not None and s.replica.master == primary and s.replica.healthy
                 and req.replication.user not in changed_users)
        if wired:
            if req.readonly_replicas and not s.read_only:
                with session(a, req.admin) as conn:
                    execute(conn, "SET GLOBAL read_only = ON")
                actions.append(f"set {a.url} read-only")
            continue
        reason = needs_seed(s, oldest)
        if reason:
            to_seed.append((a, reason))
            continue
        req.progress(f"attaching {a.url} to {primary.url}")
        attach_replica(a, s, primary, req)
        actions.append(f"attached {a.url} to {primary.url}")
    for a, reason in to_seed:
        seed_joining_node(req, primary, a, reason, actions)
    req.progress("waiting for replicas to catch up")
    wait_replicas(req, primary, others)
    if req.sysbench_table_size > 0:
        prepare_sysbench(req, primary, actions)
        wait_replicas(req, primary, others)
    if req.load_sql or req.load_csv:
        from repman.initial_data import load_initial_data

        loaded = load_initial_data(primary, req.admin, req.load_sql, req.load_csv, req.progress)
        if loaded:
            actions += loaded
            wait_replicas(req, primary, others)
    req.progress(f"bootstrap done in {time.monotonic() - started:.1f}s ({len(actions)} changes)")
    return BootstrapResult(primary=primary, replicas=others, actions=actions)

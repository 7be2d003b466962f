"""MHA 0.58 and repman side by side on one 3-node MariaDB cluster under the same writer (prints figures).

One asynchronous cluster (repman's Testbed), one recording writer per phase (an
application user without SUPER, so read_only stops it), three faults, each run by
MHA and then by repman on the same servers:

The writer (VipWriter) follows the one server with read_only off, as a VIP would.

- online switchover: MHA's ``masterha_master_switch --master_state=alive`` with a
  minimal ``master_ip_online_change_script`` (bench/mha/online_change.pl) against
  ``repman.watcher.switchover.switchover``; figure: the longest time without an
  acknowledged write overlapping the operation;
- failover after kill -9 of the master: ``masterha_manager`` (ping_interval=1, its
  minimum) against repman's watcher loop (monitoring-ticker 1 s, false-positive
  guards on); figure: kill -> first acknowledged write on the new master;
- the same with lagging replicas: every replica's IO thread stopped for a moment
  before the kill, so only the dead master has the last acknowledged writes. MHA
  copies them from its binlog over SSH; repman salvages them from its binlog folder
  (failover-salvage-binlog). The figure counts them and how many survived.

At the end every phase's writer is checked on the converged cluster: lost,
unexpected, errant GTIDs. MHA moves replicas by binlog file/position; between
phases the replicas are pointed again by GTID (mha_harness.back_to_gtid).

Usage: .venv/bin/python bench/peers.py [--switchovers 5] [--failovers 3] [--lagging 2] [--keep-logs]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pymysql  # noqa: E402

import mha_harness as mha  # noqa: E402
from common import errant_count, fmt, new_cluster, percentile  # noqa: E402
from repman.db import Credential, ServerAddress, connect, query  # noqa: E402
from repman.lab.writer import SCHEMA, Writer  # noqa: E402
from repman.watcher.loop import Watcher  # noqa: E402
from repman.watcher.switchover import switchover  # noqa: E402
from testkit.cluster import HACluster  # noqa: E402
from testkit.polling import wait_until  # noqa: E402

APP = Credential("app", "app-bench-secret")
# How long a phase waits for its writer's next acknowledgements: MHA's failover over ssh
# (binlog saving, relay-log diffs) took over 30 s on a loaded 2-core CI machine.
ACK_WAIT = 120.0


class VipWriter(Writer):
    """The recording writer, following the one server with read_only off, as a VIP would.

    tests/writer.py also requires "no replication configured"; MHA opens writes on the
    new master (its online-change script, or read_only=0 in a failover) seconds before
    it resets that server's replica settings, so that rule would charge MHA for a delay
    its clients do not see. Both tools are measured with this writer.
    """

    def primary(self) -> ServerAddress | None:
        for addr in self.servers:
            try:
                with connect(addr, self.credential, timeout=0.5, read_timeout=2) as conn:
                    if int(query(conn, "SELECT @@GLOBAL.read_only AS ro")[0]["ro"]) == 0:
                        return addr
            except pymysql.MySQLError:
                continue
        return None


class Bench:
    """The cluster, MHA's config and sshd, and every phase's writer and figures."""

    def __init__(self, base: Path, cluster: HACluster, sshd: mha.PrivateSshd, pause: float) -> None:
        self.base = base
        self.c = cluster
        self.sshd = sshd
        self.pause = pause
        self.writers: dict[str, Writer] = {}
        self.log = base / "mha.log"
        dirs = {a.url: str(cluster.bed.node(a).paths.datadir) for a in cluster.servers}
        self.mha_conf = mha.write_mha_config(base / "app.cnf", cluster.servers, dirs, cluster.bed.admin,
                                             cluster.bed.replication, sshd, base / "mha")
        cluster.set(failover_salvage_binlog_dirs=[f"{k}={v}" for k, v in dirs.items()])
        self.master_only: dict[str, set[int]] = {}

    # -- writers ---------------------------------------------------------------------------------
    def writer(self, phase: str) -> Writer:
        w = VipWriter(self.c.servers, APP, pause=self.pause, name=phase)
        w.start(base=(len(self.writers) + 1) * 10_000_000)
        self.writers[phase] = w
        w.wait_acks(100, ACK_WAIT)
        return w

    def next_target(self) -> ServerAddress:
        servers = self.c.servers
        return servers[(servers.index(self.c.primary()) + 1) % len(servers)]

    def back_to_gtid(self) -> None:
        master = self.c.primary()
        mha.back_to_gtid(self.c.servers, master, self.c.bed.admin, self.c.bed.replication)
        target = self.c.var(master, "gtid_binlog_pos")     # writes go on: wait for a position, not equality
        for r in self.c.servers:
            if r != master:
                done = self.c.sql(r, "SELECT MASTER_GTID_WAIT(%s, 60) AS w", (target,))[0]["w"]
                status = self.c.sql(r, "SHOW SLAVE STATUS")
                assert done == 0 and status and status[0]["Slave_SQL_Running"] == "Yes", \
                    f"{r.url} does not replicate from {master.url} by GTID: {status}"

    # -- switchover --------------------------------------------------------------------------------
    def mha_switchover(self, rounds: int) -> tuple[list[float], list[float], list[str]]:
        gaps, walls, failures = [], [], []
        w = self.writer("mha-switch")
        for _ in range(rounds):
            target = self.next_target()
            t0 = time.monotonic()
            rc, wall = mha.run(["masterha_master_switch", f"--conf={self.mha_conf}", "--master_state=alive",
                                f"--new_master_host={target.host}", f"--new_master_port={target.port}",
                                "--orig_master_is_new_slave", "--interactive=0", "--running_updates_limit=10"],
                               120, self.log)
            t1 = time.monotonic()
            if rc != 0:
                failures.append(f"masterha_master_switch exit {rc} (see {self.log})")
                break
            w.wait_acks(50, ACK_WAIT)
            gaps.append(w.gaps(t0, t1))
            walls.append(wall)
            self.back_to_gtid()
            w.wait_acks(50, ACK_WAIT)
        w.stop()
        return gaps, walls, failures

    def repman_switchover(self, rounds: int) -> tuple[list[float], list[float], list[str]]:
        gaps, walls, failures = [], [], []
        w = self.writer("repman-switch")
        for _ in range(rounds):
            t0 = time.monotonic()
            res = switchover(self.c.cfg, self.c.store, None, to=self.next_target())
            t1 = time.monotonic()
            if not res.ok:
                failures.append(res.sentence)
                break
            w.wait_acks(50, ACK_WAIT)
            gaps.append(w.gaps(t0, t1))
            walls.append(t1 - t0)
            w.wait_acks(50, ACK_WAIT)
        w.stop()
        return gaps, walls, failures

    # -- failover ----------------------------------------------------------------------------------
    def _lag(self, w: Writer, old: ServerAddress) -> set[int]:
        """Stop every replica's IO thread, let ~150 writes reach the master only; their ids."""
        for r in self.c.servers:
            if r != old:
                self.c.sql(r, "STOP SLAVE IO_THREAD")
        w.wait_acks(150, ACK_WAIT)
        return {a.id for a in w.acked}

    def _master_only(self, phase: str, acked_before_kill: set[int], old: ServerAddress) -> None:
        seen: set[int] = set()
        for r in self.c.servers:
            if r != old:
                rows = self.c.sql(r, f"SELECT id FROM {SCHEMA}.writes WHERE writer=%s", (phase,))
                seen |= {int(x["id"]) for x in rows}
        self.master_only[phase] = acked_before_kill - seen

    def _first_write(self, w: Writer, old: ServerAddress, killed: float, limit: float = 120) -> float | None:
        deadline = killed + limit
        while time.monotonic() < deadline:
            new = [a for a in w.acked if a.at > killed and a.server != old.url]
            if new:
                return new[0].at - killed
            time.sleep(0.005)
        return None

    def mha_failover(self, rounds: int, lagging: bool) -> tuple[list[float], list[str]]:
        phase = "mha-lag" if lagging else "mha-fail"
        outages, failures = [], []
        w = self.writer(phase)
        for _ in range(rounds):
            old = self.c.primary()
            manager = mha.start_manager(self.mha_conf, self.log)
            try:
                if not _wait_log(self.base / "mha" / "manager.log", "waiting until MySQL doesn't respond", 60):
                    failures.append(f"masterha_manager did not start monitoring (see {self.base / 'mha'})")
                    break
                acked = self._lag(w, old) if lagging else set()
                self.c.bed.kill(old)
                killed = time.monotonic()
                if lagging:
                    self._master_only(phase, acked, old)
                first = self._first_write(w, old, killed)
                if first is None:
                    failures.append("MHA: no write on a new master within 120 s")
                    break
                outages.append(first)
                rc = manager.wait(120)
                if rc != 0:
                    failures.append(f"masterha_manager exit {rc} (see {self.base / 'mha' / 'manager.log'})")
                    break
            finally:
                mha.stop_manager(manager)
            self.c.bed.start(old)
            self.back_to_gtid()
            w.wait_acks(50, ACK_WAIT)
        w.stop()
        return outages, failures

    def repman_failover(self, rounds: int, lagging: bool) -> tuple[list[float], list[str]]:
        phase = "repman-lag" if lagging else "repman-fail"
        outages, failures = [], []
        self.c.set(failover_mode="automatic", monitoring_ticker=1.0, failover_limit=0, failover_time_limit=0)
        watcher = Watcher.for_clusters([self.c.cfg])
        w = self.writer(phase)
        watcher.start()
        try:
            for _ in range(rounds):
                time.sleep(5)                      # the heartbeat history covers its window again
                old = self.c.primary()
                acked = self._lag(w, old) if lagging else set()
                self.c.bed.kill(old)
                killed = time.monotonic()
                if lagging:
                    self._master_only(phase, acked, old)
                first = self._first_write(w, old, killed)
                if first is None:
                    failures.append("repman: no write on a new master within 120 s")
                    break
                outages.append(first)
                self.c.bed.start(old)
                new = self.c.primary()

                def rejoined(old=old, new=new) -> bool:
                    rows = self.c.sql(old, "SHOW SLAVE STATUS")
                    return bool(rows) and int(rows[0]["Master_Port"]) == new.port \
                        and rows[0]["Slave_IO_Running"] == "Yes" and rows[0]["Slave_SQL_Running"] == "Yes"
                self.c.wait_for(rejoined, timeout=60, what=f"{old.url} to rejoin")
                w.wait_acks(50, ACK_WAIT)
        finally:
            watcher.stop()
            w.stop()
            self.c.set(failover_mode="manual")
        return outages, failures

    # -- verdict -----------------------------------------------------------------------------------
    def verdicts(self) -> dict[str, tuple[int, int, int]]:
        primary = self.c.assert_converged()
        errant = errant_count(self.c)
        out = {}
        for phase, w in self.writers.items():
            lost, unexpected = w.verify(primary)
            out[phase] = (len(lost), len(unexpected), errant)
        return out


def _wait_log(path: Path, text: str, timeout: float) -> bool:
    try:
        return wait_until(lambda: path.exists() and text in path.read_text(errors="replace"), timeout=timeout,
                          what=f"{text!r} in {path}")
    except AssertionError:
        return False


def _create_app_user(c: HACluster) -> None:
    """The application's writer: INSERT/SELECT and replica monitoring, no SUPER (read_only applies)."""
    Writer.prepare(c.primary(), c.bed.admin)
    p = c.primary()
    c.sql(p, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (APP.user, APP.password))
    c.sql(p, f"GRANT SELECT, INSERT ON {SCHEMA}.* TO %s@'%%'", (APP.user,))
    c.sql(p, "GRANT SLAVE MONITOR ON *.* TO %s@'%%'", (APP.user,))
    c.assert_converged()


def _row(label: str, theirs: list[float], ours: list[float], p: float = 50) -> str:
    if not theirs or not ours:
        return f"  {label:44s} {'-':>10s} {'-':>10s}"
    a, b = percentile(theirs, p), percentile(ours, p)
    ratio = f"{a / b:.1f}x" if b > 0 else "inf"
    return f"  {label:44s} {fmt(a):>10s} {fmt(b):>10s}   {ratio:>6s}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchovers", type=int, default=5, help="online switchovers per tool")
    ap.add_argument("--failovers", type=int, default=3, help="kill -9 failovers per tool")
    ap.add_argument("--lagging", type=int, default=2, help="kill -9 failovers with lagging replicas per tool")
    ap.add_argument("--pause", type=float, default=0.001, help="seconds between two inserts of the writer")
    ap.add_argument("--keep-logs", action="store_true", help="keep MHA's logs and the datadirs")
    args = ap.parse_args()
    missing = mha.mha_available()
    if missing:
        print(f"bench/peers.py: MHA or sshd missing ({missing}): install mha4mysql-manager, mha4mysql-node, "
              "openssh-server", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)

    cluster = new_cluster(False)
    base = cluster.bed.base.parent
    sshd = mha.PrivateSshd(base / "ssh")
    failures: list[str] = []
    try:
        sshd.start()
        mha.prepare_servers(cluster.servers, cluster.bed.admin)
        _create_app_user(cluster)
        bench = Bench(base, cluster, sshd, args.pause)
        sw_mha = bench.mha_switchover(args.switchovers)
        sw_rm = bench.repman_switchover(args.switchovers)
        fo_mha = bench.mha_failover(args.failovers, lagging=False) if args.failovers else ([], [])
        fo_rm = bench.repman_failover(args.failovers, lagging=False) if args.failovers else ([], [])
        lag_mha = bench.mha_failover(args.lagging, lagging=True) if args.lagging else ([], [])
        lag_rm = bench.repman_failover(args.lagging, lagging=True) if args.lagging else ([], [])
        for part in (sw_mha, sw_rm, fo_mha, fo_rm, lag_mha, lag_rm):
            failures += part[-1]
        verdicts = bench.verdicts()
        version = str(cluster.sql(cluster.primary(), "SELECT VERSION() AS v")[0]["v"])
    finally:
        sshd.stop()
        cluster.bed.destroy(keep_data=args.keep_logs)
        if not args.keep_logs:
            shutil.rmtree(base, ignore_errors=True)

    print(f"peers benchmark: 3 nodes {version}, asynchronous, one writer per phase (user without SUPER, "
          f"pause {args.pause * 1000:.1f} ms); MHA 0.58 ping_interval=1, repman monitoring-ticker 1 s")
    print(f"  {'figure':44s} {'MHA':>10s} {'repman':>10s}   {'ratio':>6s}")
    print(_row(f"switchover unavailability p50 (n={len(sw_rm[0])})", sw_mha[0], sw_rm[0]))
    print(_row("switchover unavailability max", sw_mha[0], sw_rm[0], 100))
    print(_row("switchover command wall time p50", sw_mha[1], sw_rm[1]))
    print(_row(f"kill -9 -> first write p50 (n={len(fo_rm[0])})", fo_mha[0], fo_rm[0]))
    print(_row("kill -9 -> first write max", fo_mha[0], fo_rm[0], 100))
    print(_row(f"lagging replicas: kill -9 -> first write p50 (n={len(lag_rm[0])})", lag_mha[0], lag_rm[0]))
    for phase, (lost, unexpected, errant) in verdicts.items():
        only = bench.master_only.get(phase)
        extra = f"   acknowledged on the dead master only: {len(only)}, recovered {len(only) - lost}" \
            if only is not None else ""
        print(f"  {phase:14s} acks {len(bench.writers[phase].acked):6d}   lost {lost}   unexpected {unexpected}   "
              f"errant GTIDs {errant}{extra}")
    if failures:
        print(f"  failures: {failures}")
    bad = failures or any(v[0] or v[1] or v[2] for v in verdicts.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

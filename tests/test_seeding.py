"""Seeding and reseed on real mariadbd and mariadb-backup (repman/seeding.py).

A node the primary's binlogs cannot bring up to date gets a physical copy of a
healthy member; a broken replica is rebuilt by ``repman reseed``; an interrupted
seeding leaves the cluster as it was. Each test checks the writer's record:
nothing acknowledged is lost, nothing unexpected appears, no errant GTID.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from repman.bootstrap import BootstrapRequest, bootstrap
from repman.db import ServerAddress
from repman.errors import BootstrapError
from repman.seeding import SeedError, SeedRequest, purge_binlogs, seed_node
from testkit.cluster import HACluster
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.skipif(shutil.which("mariadb-backup") is None
                                                or shutil.which("mbstream") is None,
                                                reason="mariadb-backup / mbstream not installed")]


def _errant(cluster: HACluster, addr: ServerAddress) -> list[str]:
    """GTIDs in ``addr``'s binlog state (every domain-server pair) the primary's lacks."""
    def state(a: ServerAddress) -> dict[tuple[int, int], int]:
        out = {}
        for part in filter(None, cluster.var(a, "gtid_binlog_state").split(",")):
            d, s, n = (int(x) for x in part.strip().split("-"))
            out[(d, s)] = n
        return out
    ref = state(cluster.primary())
    return [f"{d}-{s}-{n}" for (d, s), n in state(addr).items() if n > ref.get((d, s), 0)]


def _no_errant(cluster: HACluster) -> None:
    for addr in cluster.servers:
        assert not _errant(cluster, addr), f"{addr.url} holds errant GTIDs {_errant(cluster, addr)}"


def _check_writer(cluster: HACluster, writer, servers=None) -> None:
    for addr in servers or cluster.servers:
        lost, unexpected = writer.verify(addr)
        assert not lost and not unexpected, f"{addr.url}: lost {sorted(lost)[:5]} unexpected {sorted(unexpected)[:5]}"


def test_bootstrap_keeps_a_healthy_replica_while_writes_flow(cluster_factory):
    """The replica is read after the primary; with writes flowing it is then ahead of that
    first read. Bootstrap must compare it with a primary read taken afterwards."""
    cluster = cluster_factory(count=2)
    writer = cluster.writer(pause=0).start()
    try:
        writer.wait_acks(50)
        for _ in range(15):
            bootstrap(BootstrapRequest(servers=cluster.servers, admin=cluster.bed.admin,
                                       replication=cluster.bed.replication, monitoring=cluster.bed.monitoring))
    finally:
        writer.stop()
    cluster.assert_converged()
    _check_writer(cluster, writer)


@pytest.mark.slow
def test_bootstrap_seeds_a_joining_node_after_purged_binlogs(cluster_factory):
    """x2 -> x3 after PURGE BINARY LOGS, under writes: the third node is seeded, holds every
    acknowledged row and replicates. Without seeding, bootstrap says why instead of error 1236."""
    cluster = cluster_factory(count=3)
    # Start from a 2-node cluster: the third node leaves and comes back empty.
    joining = cluster.servers[2]
    node = cluster.bed.node(joining)
    cluster.bed.kill(joining)
    shutil.rmtree(Path(node.base_dir) / "data")
    from repman.local.node import create_node
    create_node(node)  # a fresh, empty server on the same address
    writer = cluster.writer(pause=0.001).start()
    try:
        writer.wait_acks(200)
        with cluster.bed.connect(cluster.servers[0]) as conn:
            purge_binlogs(conn)
        req = BootstrapRequest(servers=cluster.servers, admin=cluster.bed.admin,
                               replication=cluster.bed.replication, monitoring=cluster.bed.monitoring)
        with pytest.raises(BootstrapError, match=rf"{joining.url} cannot replicate .*binlogs start after"):
            bootstrap(req)
        req.seed_local = True
        lines: list[str] = []
        req.progress = lines.append
        result = bootstrap(req)
        assert any(a.startswith(f"seeded {joining.url}") for a in result.actions), result.actions
        assert any("MiB copied" in line and "MiB/s" in line for line in lines), lines
        writer.wait_acks(100)
    finally:
        writer.stop()
    cluster.assert_converged()
    _check_writer(cluster, writer)
    _no_errant(cluster)
    assert cluster.var(joining, "read_only") == "1"


@pytest.mark.slow
def test_reseed_rebuilds_a_replica_whose_datadir_was_deleted(cluster_factory, capsys):
    from repman.cli import main

    cluster = cluster_factory(count=3)
    config = _config_file(cluster)
    writer = cluster.writer(pause=0.001).start()
    try:
        writer.wait_acks(100)
        broken = cluster.replicas()[1]
        cluster.bed.kill(broken)
        base = Path(cluster.bed.node(broken).base_dir)
        shutil.rmtree(base / "data")
        assert main(["--config", str(config), "reseed", broken.url]) == 1
        assert "step 'source'" in capsys.readouterr().err  # down: its directory is needed
        assert main(["--config", str(config), "reseed", broken.url, "--base-dir", str(base)]) == 0
        out = capsys.readouterr()
        assert f"reseeded {broken.url}" in out.out and "MiB copied" in out.err
        writer.wait_acks(100)
    finally:
        writer.stop()
    cluster.assert_converged()
    _check_writer(cluster, writer)
    _no_errant(cluster)


@pytest.mark.slow
def test_reseed_removes_errant_data_and_refuses_the_primary(cluster_factory, capsys):
    from repman.cli import main

    cluster = cluster_factory(count=3)
    config = _config_file(cluster)
    writer = cluster.writer(pause=0.001).start()
    try:
        writer.wait_acks(100)
        bad = cluster.replicas()[0]
        cluster.sql(bad, "INSERT INTO repman_test.writes (id, writer, at) VALUES (-1, 'errant', NOW(6))")
        assert _errant(cluster, bad)
        assert main(["--config", str(config), "reseed", cluster.primary().url]) == 1
        assert "is the primary: switch over first" in capsys.readouterr().err
        assert main(["--config", str(config), "reseed", bad.url]) == 0
        writer.wait_acks(100)
    finally:
        writer.stop()
    assert cluster.sql(bad, "SELECT COUNT(*) AS n FROM repman_test.writes WHERE id = -1")[0]["n"] == 0
    cluster.assert_converged()
    _check_writer(cluster, writer)
    _no_errant(cluster)


@pytest.mark.slow
def test_seeding_interrupted_by_kill_of_the_source_changes_nothing_and_a_rerun_succeeds(cluster_factory):
    cluster = cluster_factory(count=3)
    writer = cluster.writer(pause=0.001).start()
    try:
        writer.wait_acks(100)
        primary = cluster.primary()
        target, source = cluster.replicas()
        work = Path(cluster.bed.node(target).base_dir) / "seed" / "data"
        target_pid = cluster.var(target, "pid_file")

        def kill_source_mid_stream() -> None:
            try:
                wait_until(lambda: work.is_dir() and any(work.iterdir()), timeout=60,
                           what="the seed stream to start", every=0.005)
            except AssertionError:
                return  # the source keeps running: the main thread's checks fail
            cluster.bed.kill(source)

        killer = threading.Thread(target=kill_source_mid_stream)
        killer.start()
        req = SeedRequest(target=target, primary=primary, members=cluster.servers, admin=cluster.bed.admin,
                          replication=cluster.bed.replication, source=source)
        with pytest.raises(SeedError, match=rf"seeding {target.url} failed at step 'stream'"):
            seed_node(req)
        killer.join()
        assert not cluster.bed.running(source)
        # The target kept its data, process and replication; nothing of the attempt remains.
        assert cluster.var(target, "pid_file") == target_pid
        assert not work.parent.exists()
        status = cluster.sql(target, "SHOW SLAVE STATUS")[0]
        assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
        cluster.bed.start(source)
        writer.wait_acks(50)
        result = seed_node(req)
        assert result.source == source and result.bytes_copied > 0
        writer.wait_acks(50)
    finally:
        writer.stop()
    cluster.assert_converged()
    _check_writer(cluster, writer)
    _no_errant(cluster)


def test_reseed_input_errors_are_one_line(cluster_factory, capsys):
    from repman.cli import main

    cluster = cluster_factory(count=2)
    config = _config_file(cluster)
    assert main(["--config", str(config), "reseed", "127.0.0.1:1"]) == 1
    assert capsys.readouterr().err.strip() == "repman: 127.0.0.1:1 is not a server of cluster test"
    assert main(["--config", str(config), "reseed", "nonsense"]) == 2
    assert capsys.readouterr().err.strip().startswith("repman: server: bad host:port")


def _config_file(cluster: HACluster) -> Path:
    import yaml

    path = Path(cluster.bed.base).parent / "repman.yaml"
    path.write_text(yaml.safe_dump({"clusters": {"test": {
        "db-servers-hosts": [a.url for a in cluster.servers],
        "db-servers-credential": f"{cluster.bed.admin.user}:{cluster.bed.admin.password}",
        "replication-credential": f"{cluster.bed.replication.user}:{cluster.bed.replication.password}",
        "monitoring-datadir": str(cluster.cfg.state_dir.parent),
    }}}))
    return path

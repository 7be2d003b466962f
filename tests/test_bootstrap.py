"""Bootstrap against real mariadbd: wiring, read-only replicas, idempotence, failover-safety, divergence."""

from __future__ import annotations

import shutil

import pymysql
import pytest

from repman.bootstrap import BootstrapRequest, bootstrap, change_master_sql
from repman.db import Credential, ServerAddress, execute, query, session, variable
from repman.errors import BootstrapError
from repman.local.testbed import Testbed
from repman.topology import read_state
from testkit.env import HAVE_MARIADB, needs_mariadb
from testkit.polling import wait_until

pytestmark = needs_mariadb
APP = Credential("app", "app-pw")


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    """One bootstrapped cluster shared by the tests that do not move its primary."""
    if not HAVE_MARIADB:
        pytest.skip("mariadbd not installed")
    bed = Testbed(base=tmp_path_factory.mktemp("wired"))
    try:
        bed = Testbed.create(bed.base, count=3)
        bed.first_result = bed.bootstrap()
        yield bed
    finally:
        bed.destroy()


def rows_on(bed, address: ServerAddress, sql: str) -> list[dict]:
    with session(address, bed.admin) as conn:
        return query(conn, sql)


def test_bootstrap_wires_gtid_replication_with_read_only_replicas(wired):
    testbed = wired
    result = testbed.first_result
    first, second, third = testbed.addresses
    assert result.primary == first and result.replicas == [second, third]
    with session(first, testbed.admin) as conn:
        assert variable(conn, "read_only") == "0"
        execute(conn, "CREATE DATABASE app")
        execute(conn, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
        execute(conn, "INSERT INTO app.t VALUES (1, 'from-primary')")
    for replica in (second, third):
        wait_until(lambda: rows_on(testbed, replica, "SELECT v FROM app.t WHERE id=1") == [{"v": "from-primary"}],
                 what=f"row on {replica}")
        state = read_state(replica, testbed.admin)
        assert state.read_only
        assert state.replica is not None and state.replica.master == first and state.replica.healthy
        assert state.replica.using_gtid.lower() == "slave_pos"


def test_replication_and_monitoring_users_have_least_privileges(wired):
    testbed = wired
    primary = testbed.addresses[0]
    grants = rows_on(testbed, primary, "SHOW GRANTS FOR 'repl'@'%'")
    text = " ".join(next(iter(r.values())) for r in grants).upper()
    assert "REPLICATION SLAVE" in text and "ALL PRIVILEGES" not in text and "SUPER" not in text
    grants = rows_on(testbed, primary, "SHOW GRANTS FOR 'monitor'@'%'")
    text = " ".join(next(iter(r.values())) for r in grants).upper()
    assert "ALL PRIVILEGES" not in text and " SELECT" not in text and "INSERT" not in text
    with session(primary, testbed.monitoring) as conn:  # the watcher's view works with it
        assert query(conn, "SHOW SLAVE STATUS") == []
        with pytest.raises(pymysql.MySQLError):
            execute(conn, "CREATE DATABASE nope")


def test_a_non_admin_user_cannot_write_on_a_replica(wired):
    testbed = wired
    primary, replica, _ = testbed.addresses
    with session(primary, testbed.admin) as conn:
        execute(conn, "CREATE DATABASE app2")
        execute(conn, "CREATE TABLE app2.t (id INT PRIMARY KEY)")
        execute(conn, "CREATE USER %s@'%%' IDENTIFIED BY %s", (APP.user, APP.password))
        execute(conn, "GRANT ALL ON app2.* TO %s@'%%'", (APP.user,))
    wait_until(lambda: rows_on(testbed, replica, "SELECT User FROM mysql.user WHERE User='app'"), what="app user")
    with session(primary, APP) as conn:
        execute(conn, "INSERT INTO app2.t VALUES (1)")
    wait_until(lambda: rows_on(testbed, replica, "SELECT id FROM app2.t"), what="row on the replica")
    with session(replica, APP) as conn:
        with pytest.raises(pymysql.MySQLError) as info:
            execute(conn, "INSERT INTO app2.t VALUES (2)")
    assert info.value.args[0] == 1290  # running with --read-only


def test_second_bootstrap_changes_nothing(wired):
    testbed = wired
    first = testbed.first_result
    before = {a: read_state(a, testbed.admin).gtid_binlog_pos for a in testbed.addresses}
    again = testbed.bootstrap()
    assert again.actions == [] and not again.changed
    assert again.primary == first.primary and again.replicas == first.replicas
    after = {a: read_state(a, testbed.admin).gtid_binlog_pos for a in testbed.addresses}
    assert after == before


def _move_primary(bed, new: ServerAddress) -> None:
    """A manual switchover, as the watcher would leave the cluster after a failover."""
    old = bed.addresses[0]
    with session(new, bed.admin) as conn:
        execute(conn, "STOP SLAVE")
        execute(conn, "RESET SLAVE ALL")
        execute(conn, "SET GLOBAL read_only = OFF")
    for other in bed.addresses:
        if other == new:
            continue
        with session(other, bed.admin) as conn:
            execute(conn, "SET GLOBAL read_only = ON")
            execute(conn, "STOP SLAVE")
            sql, args = change_master_sql(new, bed.replication, 1.0, 1)
            execute(conn, sql, args)
            execute(conn, "START SLAVE")
    assert old != new


def test_bootstrap_after_a_primary_move_keeps_the_topology(testbed):
    testbed.bootstrap()
    first, second, third = testbed.addresses
    _move_primary(testbed, second)
    wait_until(lambda: all(read_state(a, testbed.admin).replica.healthy for a in (first, third)),
             what="replicas of the new primary")
    result = testbed.bootstrap(preferred=first)
    assert result.primary == second
    assert sorted(result.replicas) == sorted([first, third])
    assert not any("attached" in a for a in result.actions)
    with session(second, testbed.admin) as conn:
        assert variable(conn, "read_only") == "0"
        execute(conn, "CREATE DATABASE after_move")
    for replica in (first, third):
        wait_until(lambda: rows_on(testbed, replica, "SHOW DATABASES LIKE 'after_move'"), what="replication")
        assert read_state(replica, testbed.admin).read_only


def test_diverging_data_is_refused(testbed):
    first, second, _ = testbed.addresses
    with session(second, testbed.admin) as conn:  # a transaction the future primary never saw
        execute(conn, "CREATE DATABASE stray")
    with pytest.raises(BootstrapError) as info:
        testbed.bootstrap()
    msg = str(info.value)
    assert second.url in msg and "diverging data" in msg
    assert read_state(second, testbed.admin).replica is None  # nothing was changed


def test_diverged_replica_of_a_live_cluster_is_refused(testbed):
    testbed.bootstrap()
    _, replica, _ = testbed.addresses
    with session(replica, testbed.admin) as conn:
        execute(conn, "STOP SLAVE")
        execute(conn, "SET GLOBAL read_only = OFF")
        execute(conn, "CREATE DATABASE errant")
    with pytest.raises(BootstrapError, match="diverging data"):
        testbed.bootstrap()


def test_semisync_roles(testbed):
    testbed.bootstrap(semisync=True)
    primary, *replicas = testbed.addresses
    state = read_state(primary, testbed.admin)
    assert state.semisync_master and not state.semisync_slave
    for r in replicas:
        s = read_state(r, testbed.admin)
        assert s.semisync_slave and not s.semisync_master
    def clients() -> int:
        rows = rows_on(testbed, primary, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
        return int(rows[0]["Value"]) if rows else 0
    wait_until(lambda: clients() == 2, what="two semi-sync replicas")
    with session(primary, testbed.admin) as conn:
        execute(conn, "CREATE DATABASE acked")
        yes = query(conn, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_yes_tx'")[0]["Value"]
    assert int(yes) >= 1


def test_replication_password_rotation_repoints_replicas(testbed):
    testbed.bootstrap()
    rotated = Credential("repl", "rotated-repl-pw")
    result = bootstrap(BootstrapRequest(servers=testbed.addresses, admin=testbed.admin, replication=rotated,
                                        monitoring=testbed.monitoring))
    assert any("attached" in a for a in result.actions)
    primary, *replicas = testbed.addresses
    for r in replicas:  # a reconnect must use the new password
        with session(r, testbed.admin) as conn:
            execute(conn, "STOP SLAVE IO_THREAD")
            execute(conn, "START SLAVE IO_THREAD")
    with session(primary, testbed.admin) as conn:
        execute(conn, "CREATE DATABASE rotated")
    for r in replicas:
        wait_until(lambda: rows_on(testbed, r, "SHOW DATABASES LIKE 'rotated'"), what="replication after rotation")
        assert read_state(r, testbed.admin).replica.healthy


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench not installed")
def test_optional_sysbench_table_reaches_every_replica(testbed):
    result = bootstrap(BootstrapRequest(servers=testbed.addresses, admin=testbed.admin,
                                        replication=testbed.replication, sysbench_table_size=200))
    assert any("sbtest1" in a for a in result.actions)
    for r in result.replicas:
        assert rows_on(testbed, r, "SELECT COUNT(*) AS n FROM sbtest.sbtest1") == [{"n": 200}]

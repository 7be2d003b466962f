"""Resize of the local stack's real program under the embedded engine, under writes.

The issue's failing scenario: after PURGE BINARY LOGS, x2.tiny -> x3.tiny with a
writer running must seed the new node (not fail with error 1236, not refuse a
healthy replica as diverging); then back to x2.tiny while the primary sits on the
node being removed: it is switched over first, and the node stops only after the
routers and the watcher dropped it. The writer's record is checked on every node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repman.db import Credential, ServerAddress, query, session, variable
from repman.lab.writer import Writer
from repman.local.mariadb import pid_alive
from repman.seeding import purge_binlogs
from testkit.env import needs_mariadb
from testkit.local_stack import ROOT, engine, local_config
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.slow]


def _watcher_servers(path: Path) -> list[str]:
    raw = yaml.safe_load(path.read_text())
    return list(next(iter(raw["clusters"].values()))["db-servers-hosts"])


def _healthy(address: ServerAddress, admin: Credential, primary: ServerAddress) -> None:
    with session(address, admin) as conn:
        status = query(conn, "SHOW SLAVE STATUS")
    assert status and status[0]["Slave_IO_Running"] == "Yes" and status[0]["Slave_SQL_Running"] == "Yes", status
    assert int(status[0]["Master_Port"]) == primary.port and status[0]["Using_Gtid"] == "Slave_Pos"


def _caught_up(address: ServerAddress, admin: Credential, primary: ServerAddress) -> None:
    with session(primary, admin) as conn:
        target = variable(conn, "gtid_binlog_pos")
    with session(address, admin, read_timeout=70) as conn:
        assert query(conn, "SELECT MASTER_GTID_WAIT(%s, 60) AS w", (target,))[0]["w"] == 0


def _binlog_state(address: ServerAddress, admin: Credential) -> dict[tuple[int, int], int]:
    with session(address, admin) as conn:
        text = variable(conn, "gtid_binlog_state") or ""
    out = {}
    for part in filter(None, text.split(",")):
        d, s, n = (int(x) for x in part.strip().split("-"))
        out[(d, s)] = n
    return out


def test_scale_out_after_purge_under_writes_then_in_off_the_primary(local_stack):
    overrides, _state_dir = local_stack
    admin = Credential(*local_config()["repman:db-servers-credential"].split(":", 1))
    x2 = overrides + ["repman:prov-service-plan=x2.tiny"]
    x3 = overrides + ["repman:prov-service-plan=x3.tiny"]
    first = json.loads(engine("up", "--json", overrides=x2).stdout)["outputs"]
    servers = [ServerAddress.parse(s) for s in first["servers"]]
    primary = ServerAddress.parse(first["primary_endpoint"])
    third = ServerAddress(servers[0].host, servers[0].port + 2)  # the node x3 adds
    Writer.prepare(primary, admin)
    writer = Writer([*servers, third], admin, pause=0.001).start()
    try:
        writer.wait_acks(300)
        with session(primary, admin) as conn:
            purge_binlogs(conn)
        grown = engine("up", "--json", overrides=x3)
        outs = json.loads(grown.stdout)["outputs"]
        assert "seeding" in grown.stderr and "MiB copied" in grown.stderr, grown.stderr[-2000:]
        assert [ServerAddress.parse(s) for s in outs["servers"]] == [*servers, third]
        assert _watcher_servers(Path(outs["watcher_config_path"])) == outs["servers"]
        writer.wait_acks(200)
        acked = {a.id for a in list(writer.acked)}  # before the primary's position is read
        _caught_up(third, admin, primary)
        _healthy(third, admin, primary)
        with session(third, admin) as conn:
            present = {r["id"] for r in query(conn, "SELECT id FROM repman_test.writes")}
        assert acked <= present, sorted(acked - present)[:10]

        # The primary moves onto the node that x2 removes, then the plan shrinks under writes.
        config = outs["watcher_config_path"]
        moved = subprocess.run([sys.executable, "-m", "repman.cli", "--config", config, "switchover",
                                "--to", third.url], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert moved.returncode == 0, moved.stderr
        writer.wait_acks(100)
        with session(third, admin) as conn:
            third_pid = int(Path(query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"]).read_text())
        shrunk = engine("up", "--json", overrides=x2)
        outs = json.loads(shrunk.stdout)["outputs"]
        assert "switching over first" in shrunk.stderr, shrunk.stderr[-2000:]
        new_primary = ServerAddress.parse(outs["primary_endpoint"])
        assert new_primary in servers and outs["servers"] == first["servers"]
        assert _watcher_servers(Path(outs["watcher_config_path"])) == first["servers"]
        assert not pid_alive(third_pid)
        with session(ServerAddress.parse(outs["write_endpoint"]), admin) as conn:
            assert ServerAddress("127.0.0.1", int(variable(conn, "port"))) == new_primary
        writer.wait_acks(200)
    finally:
        writer.stop()
    for s in servers:
        if s != new_primary:
            _caught_up(s, admin, new_primary)
            _healthy(s, admin, new_primary)
        lost, unexpected = writer.verify(s)
        assert not lost and not unexpected, (s, sorted(lost)[:5], sorted(unexpected)[:5])
    ref = _binlog_state(new_primary, admin)
    for s in servers:
        errant = {k: n for k, n in _binlog_state(s, admin).items() if n > ref.get(k, 0)}
        assert not errant, f"{s.url} holds errant GTIDs {errant}"


def test_static_change_is_a_rolling_restart_and_memory_is_live(local_stack):
    """A tag that needs a restart (pfs: performance_schema) restarts every node once, the
    primary last after one switchover, under writes through the stack's HAProxy; a plan
    with more memory is applied live (same pids) and written to my.cnf."""
    overrides, _state_dir = local_stack
    cfg = local_config()
    admin = Credential(*cfg["repman:db-servers-credential"].split(":", 1))
    app = Credential("app", "app-pw")
    outs = json.loads(engine("up", "--json", overrides=overrides).stdout)["outputs"]
    servers = [ServerAddress.parse(s) for s in outs["servers"]]
    primary = ServerAddress.parse(outs["primary_endpoint"])
    Writer.prepare(primary, admin, app=app)
    pids = {s: _pid(s, admin) for s in servers}

    bigger = overrides + ["repman:prov-service-plan=x3.small"]
    done = json.loads(engine("up", "--json", overrides=bigger).stdout)
    assert done["changes"]["updated"] >= 3
    for s in servers:
        assert _pid(s, admin) == pids[s]
        with session(s, admin) as conn:
            assert int(variable(conn, "innodb_buffer_pool_size")) >= 2400 * 2**20
            cnf = Path(query(conn, "SELECT @@GLOBAL.datadir AS d")[0]["d"]).parent / "my.cnf"
        assert "innodb_buffer_pool_size        = 2457M" in cnf.read_text()

    writer = Writer([], app, pause=0.0, read_timeout=15, through=ServerAddress.parse(outs["write_endpoint"])).start()
    try:
        writer.wait_acks(200, timeout=60)
        began = time.monotonic()
        tags = list(cfg["repman:prov-db-tags"]) + ["pfs"]
        restarted = engine("up", "--json", overrides=bigger + ["repman:prov-db-tags=" + json.dumps(tags)])
        ended = time.monotonic()
        writer.wait_acks(200, timeout=60)
    finally:
        writer.stop()
    assert "rolling restart done: 3 servers restarted" in restarted.stderr, restarted.stderr[-2000:]
    new_outs = json.loads(restarted.stdout)["outputs"]
    new_primary = ServerAddress.parse(new_outs["primary_endpoint"])
    assert new_primary != primary
    for s in servers:
        assert _pid(s, admin) != pids[s], f"{s.url} was not restarted"
        with session(s, admin) as conn:
            assert variable(conn, "performance_schema") == "1"
    present = set(writer.rows(new_primary))
    lost = [a.id for a in writer.acked if a.id not in present]
    assert lost == [], f"acknowledged writes lost: {lost[:20]}"
    assert present - writer.attempted_ids() == set()
    # At most one pause longer than a second: the switchover (plus the watcher's re-route).
    times = sorted(a.at for a in writer.acked if began <= a.at <= ended)
    long_pauses = [b - a for a, b in zip(times, times[1:]) if b - a > 1.0]
    assert len(long_pauses) <= 1, long_pauses
    # Nothing is left pending: a second up changes nothing.
    again = json.loads(engine("up", "--json", overrides=bigger + ["repman:prov-db-tags=" + json.dumps(tags)]).stdout)
    assert again["changes"]["updated"] == again["changes"]["created"] == 0


def _pid(address: ServerAddress, admin: Credential) -> int:
    with session(address, admin) as conn:
        return int(Path(query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"]).read_text())


def test_seeding_killed_during_up_lists_the_node_nowhere_and_the_next_up_retries(local_stack):
    """kill -9 of the seeding source while ``up`` x2 -> x3 streams: ``up`` fails naming the
    node and the step; HAProxy and the watcher still list only the two replicating nodes; the
    next ``up --refresh`` restarts the killed source and seeds the new node."""
    import threading

    overrides, state_dir = local_stack
    admin = Credential(*local_config()["repman:db-servers-credential"].split(":", 1))
    x2 = overrides + ["repman:prov-service-plan=x2.tiny"]
    x3 = overrides + ["repman:prov-service-plan=x3.tiny"]
    first = json.loads(engine("up", "--json", overrides=x2).stdout)["outputs"]
    servers = [ServerAddress.parse(s) for s in first["servers"]]
    primary, source = servers
    third = ServerAddress(primary.host, primary.port + 2)
    Writer.prepare(primary, admin)
    writer = Writer([*servers, third], admin, pause=0.001).start()
    try:
        writer.wait_acks(200)
        with session(primary, admin) as conn:
            purge_binlogs(conn)
        with session(source, admin) as conn:
            source_pid_file = Path(query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"])
        seed_dir = state_dir / "cluster1" / "db3" / "seed" / "data"
        killed: list[int] = []

        def kill_source_mid_stream() -> None:
            import os
            import signal

            try:
                wait_until(lambda: seed_dir.is_dir() and any(seed_dir.iterdir()), timeout=120,
                           what="the seed stream to start", every=0.005)
            except AssertionError:
                return  # nothing killed: the main thread's assertion on `killed` says so
            pid = int(source_pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        killer = threading.Thread(target=kill_source_mid_stream)
        killer.start()
        failed = engine("up", overrides=x3, check=False)
        killer.join()
        assert killed and failed.returncode != 0
        assert f"seeding {third.url} failed at step 'stream'" in failed.stderr, failed.stderr[-2000:]
        assert "Traceback" not in failed.stderr
        watcher_cfg = next(state_dir.glob("cluster1/watcher/repman.yaml"))
        assert _watcher_servers(watcher_cfg) == first["servers"]
        for cfg_file in state_dir.glob("**/haproxy.cfg"):
            assert f":{third.port}" not in cfg_file.read_text()
        writer.wait_acks(100)  # the primary kept taking writes

        retried = engine("up", "--refresh", "--json", overrides=x3)   # refresh sees the killed source
        outs = json.loads(retried.stdout)["outputs"]
        assert outs["servers"] == [s.url for s in (*servers, third)]
        assert _watcher_servers(Path(outs["watcher_config_path"])) == outs["servers"]
        writer.wait_acks(100)
    finally:
        writer.stop()
    for s in (*servers, third):
        if s != primary:
            _caught_up(s, admin, primary)
            _healthy(s, admin, primary)
        lost, unexpected = writer.verify(s)
        assert not lost and not unexpected, (s, sorted(lost)[:5], sorted(unexpected)[:5])


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="soak: set REPMAN_SOAK=1")
def test_soak_scale_out_to_x5_after_purge_then_back_to_x3_off_the_primary(local_stack):
    from repman.local.ports import free_port_block

    overrides, _state_dir = local_stack
    # Five consecutive free ports (the fixture reserved three); ``down`` finds them in the state.
    overrides = [o for o in overrides if not o.startswith("repman:db-servers-base-port=")]
    overrides.append(f"repman:db-servers-base-port={free_port_block(5)}")
    admin = Credential(*local_config()["repman:db-servers-credential"].split(":", 1))
    plan = {n: overrides + [f"repman:prov-service-plan=x{n}.tiny"] for n in (2, 3, 5)}
    first = json.loads(engine("up", "--json", overrides=plan[2]).stdout)["outputs"]
    servers = [ServerAddress.parse(s) for s in first["servers"]]
    everyone = [ServerAddress(servers[0].host, servers[0].port + i) for i in range(5)]
    Writer.prepare(servers[0], admin)
    writer = Writer(everyone, admin, pause=0.001).start()
    try:
        writer.wait_acks(300)
        with session(servers[0], admin) as conn:
            purge_binlogs(conn)
        outs = json.loads(engine("up", "--json", overrides=plan[5]).stdout)["outputs"]
        assert outs["servers"] == [s.url for s in everyone]
        writer.wait_acks(200)
        moved = subprocess.run([sys.executable, "-m", "repman.cli", "--config", outs["watcher_config_path"],
                                "switchover", "--to", everyone[4].url], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
        assert moved.returncode == 0, moved.stderr
        writer.wait_acks(100)
        outs = json.loads(engine("up", "--json", overrides=plan[3]).stdout)["outputs"]
        assert outs["servers"] == [s.url for s in everyone[:3]]
        writer.wait_acks(200)
    finally:
        writer.stop()
    new_primary = ServerAddress.parse(outs["primary_endpoint"])
    for s in everyone[:3]:
        if s != new_primary:
            _caught_up(s, admin, new_primary)
            _healthy(s, admin, new_primary)
        lost, unexpected = writer.verify(s)
        assert not lost and not unexpected


def test_a_node_whose_datadir_was_lost_is_recreated_and_seeded_by_up(local_stack):
    """A replaced disk: the node's process and datadir are gone, the primary's binlogs are
    purged. The next ``up --refresh`` makes the node again (empty, new instance) and bootstrap seeds it."""
    import os
    import shutil
    import signal

    overrides, state_dir = local_stack
    admin = Credential(*local_config()["repman:db-servers-credential"].split(":", 1))
    outs = json.loads(engine("up", "--json", overrides=overrides).stdout)["outputs"]
    servers = [ServerAddress.parse(s) for s in outs["servers"]]
    primary, lost_node = servers[0], servers[2]
    Writer.prepare(primary, admin)
    writer = Writer(servers, admin, pause=0.001).start()
    try:
        writer.wait_acks(200)
        with session(lost_node, admin) as conn:
            pid_file = Path(query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"])
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.01)
        shutil.rmtree(pid_file.parent.parent / "data")
        with session(primary, admin) as conn:
            purge_binlogs(conn)
        writer.wait_acks(100)
        again = engine("up", "--refresh", "--json", overrides=overrides)   # refresh sees the lost node
        assert f"seeded {lost_node.url}" in again.stderr or "MiB copied" in again.stderr, again.stderr[-2000:]
        writer.wait_acks(100)
    finally:
        writer.stop()
    _caught_up(lost_node, admin, primary)
    _healthy(lost_node, admin, primary)
    for s in servers:
        lost, unexpected = writer.verify(s)
        assert not lost and not unexpected, (s, sorted(lost)[:5], sorted(unexpected)[:5])

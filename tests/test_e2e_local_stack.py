"""End to end: the real program of stacks/Pulumi.local.yaml under the embedded engine.

Same code path as ``pulumi up --stack local``: the program registers resources, the
engine runs each dynamic provider's create/diff/update/delete for real. Only the
ports and the state folder are moved (``-c`` overrides, like ``pulumi up --config``)
so the test never collides with a developer's own local stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymysql
import pytest

from repman.db import Credential, ServerAddress, connect, execute, query, session, variable
from repman.local.mariadb import pid_alive
from testkit.env import needs_mariadb
from testkit.local_stack import engine, local_config
from testkit.polling import wait_until

pytestmark = needs_mariadb
def test_local_stack_up_twice_reconfigure_and_down(local_stack):
    overrides, state_dir = local_stack
    cfg = local_config()
    admin = Credential(*cfg["repman:db-servers-credential"].split(":", 1))
    app_tags = list(cfg["repman:prov-db-tags"])

    first = json.loads(engine("up", "--json", overrides=overrides).stdout)
    outs = first["outputs"]
    assert first["changes"]["created"] >= 4
    servers = [ServerAddress.parse(s) for s in outs["servers"]]
    primary = ServerAddress.parse(outs["primary_endpoint"])
    replicas = [ServerAddress.parse(s) for s in outs["replica_endpoints"]]
    assert len(servers) == 3 and primary == servers[0] and replicas == servers[1:]
    for key in ("admin_credential", "replication_credential", "monitoring_credential"):
        assert outs[key] == "[secret]" and key in first["secret_outputs"]
    state_text = next(state_dir.glob("embedded-engine.local.json")).read_text()
    for secret in (cfg["repman:db-servers-credential"], cfg["repman:replication-credential"]):
        assert secret.split(":", 1)[1] not in state_text

    # A replicating cluster: a row written on the primary reaches both read-only replicas.
    with session(primary, admin) as conn:
        execute(conn, "CREATE DATABASE e2e")
        execute(conn, "CREATE TABLE e2e.t (id INT PRIMARY KEY)")
        execute(conn, "INSERT INTO e2e.t VALUES (42)")
    for r in replicas:
        def has_row(r=r) -> bool:
            try:
                with session(r, admin) as conn:
                    return query(conn, "SELECT id FROM e2e.t") == [{"id": 42}]
            except pymysql.MySQLError:
                return False
        wait_until(has_row, what=f"row on {r}")
        with session(r, admin) as conn:
            assert variable(conn, "read_only") == "1"
            assert query(conn, "SHOW SLAVE STATUS")[0]["Using_Gtid"] == "Slave_Pos"
    with session(primary, admin) as conn:
        assert variable(conn, "rpl_semi_sync_master_enabled") == "1"  # semisync tag of the local_stack

    # Through HAProxy: writes reach the primary, reads a replica.
    with session(ServerAddress.parse(outs["write_endpoint"]), admin) as conn:
        assert variable(conn, "server_id") == "1"
    with session(ServerAddress.parse(outs["read_endpoint"]), admin) as conn:
        assert variable(conn, "server_id") in ("2", "3")

    # The watcher runs detached with the rendered config; secrets only in 0600 files.
    config_path = Path(outs["watcher_config_path"])
    watcher_pid = _watcher_pid(config_path)
    assert pid_alive(watcher_pid)
    config_text = config_path.read_text()
    assert admin.password not in config_text and "failover-mode: automatic" in config_text
    for secret_file in (config_path.parent / "secrets").iterdir():
        assert secret_file.stat().st_mode & 0o777 == 0o600
    api = outs["watcher_api_url"].removeprefix("http://").split(":")
    assert _port_open(api[0], int(api[1]))

    # Second up with no change: nothing changes.
    second = json.loads(engine("up", "--json", overrides=overrides).stdout)
    assert second["changes"]["created"] == second["changes"]["updated"] == second["changes"]["deleted"] == 0
    assert second["outputs"]["servers"] == outs["servers"]

    # A dead watcher is restarted by the next up, and only it.
    import os
    import signal

    os.kill(watcher_pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(watcher_pid), what="watcher gone")
    # Without a refresh the plan is a pure comparison with state: nothing to do...
    assert "no changes" in engine("preview", overrides=overrides).stdout
    # ...with one, read() records the dead process and the update restarts it (setup.sh --up refreshes).
    revived = json.loads(engine("up", "--refresh", "--json", overrides=overrides).stdout)
    assert revived["changes"]["updated"] == 1 and revived["changes"]["created"] == 0
    assert pid_alive(_watcher_pid(config_path)) and _watcher_pid(config_path) != watcher_pid

    # A dynamic tag change is applied live on every node; replication is untouched.
    pids = {s.port: _server_pid(s, admin) for s in servers}
    changed = overrides + ["repman:prov-db-tags=" + json.dumps(app_tags + ["slow"])]
    third = json.loads(engine("up", "--json", overrides=changed).stdout)
    assert third["changes"]["updated"] == 3 and third["changes"]["created"] == 0  # the nodes only
    for s in servers:
        with session(s, admin) as conn:
            assert variable(conn, "slow_query_log") == "1"
        assert _server_pid(s, admin) == pids[s.port]
    with session(primary, admin) as conn:
        assert variable(conn, "read_only") == "0"

    last_watcher = _watcher_pid(config_path)
    down = engine("down", overrides=changed)
    assert "deleted" in down.stdout
    assert not pid_alive(last_watcher)
    assert not _port_open("127.0.0.1", int(outs["write_endpoint"].rsplit(":", 1)[1]))
    for s in servers:
        with pytest.raises(pymysql.MySQLError):
            connect(s, admin, timeout=1)
    assert not list(state_dir.glob("**/data/mysql"))  # the local stack does not keep data
    # ...nor the watcher's secrets and crash records, which a fresh cluster must not inherit.
    assert not config_path.parent.exists()


def _watcher_pid(config_path: Path) -> int:
    return int((config_path.parent / "watcher.pid").read_text())


def _port_open(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _server_pid(address: ServerAddress, admin: Credential) -> int:
    with session(address, admin) as conn:
        pid_file = query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"]
    return int(Path(pid_file).read_text())


def test_bad_config_is_one_line_and_creates_nothing(tmp_path):
    overrides = ["repman:prov-service-plan=x9.foo", f"repman:prov-state-dir={tmp_path}"]
    done = engine("up", overrides=overrides, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: repman:prov-service-plan: unknown service plan 'x9.foo'")
    assert list(tmp_path.iterdir()) == []

"""External hook scripts: real scripts record their arguments and order to a file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from repman.db import ServerAddress
from repman.errors import OperationRefused
from repman.routing import build_routers, failed, notify
from repman.routing.base import Topology
from repman.routing.names import server_name
from repman.routing.scripts import (
    run_alert_script,
    run_post_script,
    run_pre_script,
    run_state_change_script,
)
from repman.watcher.cluster_config import ClusterConfig
from testkit.polling import wait_until

OLD, NEW = ServerAddress("10.0.0.1", 3306), ServerAddress("10.0.0.2", 3307)


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def recorder(tmp_path: Path, name: str, log: Path, exit_code: int = 0, extra: str = "") -> str:
    """A script appending `name arg1 arg2 ...` to ``log``, then exiting ``exit_code``."""
    return script(tmp_path / name, f'echo "{name} $*" >> "{log}"\n{extra}exit {exit_code}\n')


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_failover_scripts_get_repman_arguments(tmp_path):
    log = tmp_path / "calls"
    cfg = ClusterConfig("c1", {"failover-pre-script": recorder(tmp_path, "pre", log),
                               "failover-post-script": recorder(tmp_path, "post", log)})
    said: list[str] = []
    run_pre_script(cfg, OLD, NEW, "switchover", said.append)
    run_post_script(cfg, OLD, NEW, "switchover", said.append)
    assert lines(log) == [
        f"pre 10.0.0.1 10.0.0.2 3306 3307 {server_name(OLD)} {server_name(NEW)} switchover",
        f"post 10.0.0.1 10.0.0.2 3306 3307 {server_name(OLD)} {server_name(NEW)} switchover",
    ]
    assert any("failover-pre-script ran" in s for s in said)


def test_failing_pre_script_refuses_with_its_last_line(tmp_path):
    cfg = ClusterConfig("c1", {"failover-pre-script": script(
        tmp_path / "pre", 'echo "checking"; echo "maintenance window closed" >&2; exit 3\n')})
    with pytest.raises(OperationRefused) as err:
        run_pre_script(cfg, OLD, NEW, "failover")
    assert str(err.value) == "failover refused by failover-pre-script exited 3: maintenance window closed"


def test_hanging_pre_script_is_killed_and_refuses(tmp_path):
    pidfile = tmp_path / "pid"
    cfg = ClusterConfig("c1", {"failover-script-timeout": 0.5, "failover-pre-script": script(
        tmp_path / "pre", f'sleep 60 &\necho $! > "{pidfile}"\nwait\n')})
    with pytest.raises(OperationRefused, match="timed out"):
        run_pre_script(cfg, OLD, NEW, "switchover")
    child = int(pidfile.read_text())          # the script's own child died with its process group
    wait_until(lambda: not Path(f"/proc/{child}").exists(), timeout=10, what=f"pid {child} to exit", every=0.05)
    assert not Path(f"/proc/{child}").exists()


def test_missing_pre_script_refuses_and_missing_post_script_is_only_reported(tmp_path):
    cfg = ClusterConfig("c1", {"failover-pre-script": str(tmp_path / "nope"),
                               "failover-post-script": str(tmp_path / "nope")})
    with pytest.raises(OperationRefused, match="could not run"):
        run_pre_script(cfg, OLD, NEW, "switchover")
    said: list[str] = []
    result = run_post_script(cfg, OLD, NEW, "switchover", said.append)
    assert result is not None and not result.ok and said and "could not run" in said[0]


def test_failing_post_script_never_raises(tmp_path):
    log = tmp_path / "calls"
    cfg = ClusterConfig("c1", {"failover-post-script": recorder(tmp_path, "post", log, exit_code=1)})
    result = run_post_script(cfg, OLD, None, "failover")
    assert result is not None and result.returncode == 1
    assert lines(log) == [f"post 10.0.0.1  3306  {server_name(OLD)}  failover"]


def test_unset_scripts_do_nothing():
    cfg = ClusterConfig("c1", {})
    assert run_pre_script(cfg, OLD, NEW, "switchover") is None
    assert run_post_script(cfg, OLD, NEW, "switchover") is None
    assert run_state_change_script(cfg, OLD, "Failed", "Master") is None
    assert run_alert_script(cfg, "hello") is None


def test_state_change_and_alert_arguments(tmp_path):
    log = tmp_path / "calls"
    cfg = ClusterConfig("c1", {"db-servers-state-change-script": recorder(tmp_path, "state", log),
                               "alert-script": recorder(tmp_path, "alert", log)})
    run_state_change_script(cfg, OLD, "Suspect", "Master")
    run_alert_script(cfg, "10.0.0.1:3306 Master -> Suspect", host="10.0.0.1:3306", prev_state="Master",
                     state="Suspect")
    run_alert_script(cfg, "master 10.0.0.1:3306 failed")
    # repman passes cluster, server URL, previous state, state; our sentence follows as $5
    assert lines(log) == ["state c1 10.0.0.1 3306 Suspect Master",
                          "alert c1 10.0.0.1:3306 Master Suspect 10.0.0.1:3306 Master -> Suspect",
                          "alert c1   Alert master 10.0.0.1:3306 failed"]


def test_scripts_see_cluster_and_operation_in_their_environment(tmp_path):
    out = tmp_path / "env"
    cfg = ClusterConfig("c1", {"failover-post-script": script(
        tmp_path / "post", f'echo "$REPMAN_CLUSTER $REPMAN_OPERATION" > "{out}"\n')})
    run_post_script(cfg, OLD, NEW, "failover")
    assert out.read_text().strip() == "c1 failover"


def test_vip_script_runs_when_the_primary_moves_and_is_retried(tmp_path):
    log = tmp_path / "calls"
    flag = tmp_path / "fail"
    flag.touch()
    vip = script(tmp_path / "vip", f'echo "vip $*" >> "{log}"\n[ -e "{flag}" ] && exit 1\nexit 0\n')
    cfg = ClusterConfig("c1", {"failover-vip-script": vip})
    routers = build_routers(cfg)
    assert [r.name for r in routers] == ["failover-vip-script"]
    t1 = Topology("c1", OLD, (NEW,), ())
    assert failed(notify(routers, t1))                       # exit 1: reported, not raised
    os.unlink(flag)
    assert notify(routers, t1) == {"failover-vip-script": "ok"}
    t2 = Topology("c1", OLD, (), (NEW,))                     # replicas changed, primary did not
    notify(routers, t2)
    t3 = Topology("c1", NEW, (), (OLD,), old_primary=OLD, reason="failover")
    assert notify(routers, t3) == {"failover-vip-script": "ok"}
    assert lines(log) == [
        "vip c1  10.0.0.1  3306 monitor",
        "vip c1  10.0.0.1  3306 monitor",
        "vip c1 10.0.0.1 10.0.0.2 3306 3307 failover",
    ]

"""Real hook scripts around real switchover and failover: arguments and order recorded to a
file; a failing pre-script aborts the switchover before anything changed."""

from __future__ import annotations

import stat
from pathlib import Path

from repman.db import ServerAddress, execute, query
from repman.local.testbed import Testbed as LocalBed
from repman.routing import build_routers
from repman.routing.names import server_name
from repman.watcher.config import load_cluster
from repman.watcher.state_store import StateStore


def recorder(path: Path, name: str, log: Path, fail_flag: Path | None = None) -> str:
    body = f'#!/bin/sh\necho "{name} $*" >> "{log}"\n'
    if fail_flag is not None:
        body += f'if [ -e "{fail_flag}" ]; then echo "change freeze until Monday"; exit 2; fi\n'
    path.write_text(body + "exit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def args(old: ServerAddress, new: ServerAddress, kind: str) -> str:
    return f"{old.host} {new.host} {old.port} {new.port} {server_name(old)} {server_name(new)} {kind}"


def master_of(bed: LocalBed, replica: ServerAddress) -> int:
    with bed.connect(replica) as conn:
        return int(query(conn, "SHOW SLAVE STATUS")[0]["Master_Port"])


def test_scripts_in_order_and_failing_pre_script_aborts(tmp_path):
    log = tmp_path / "calls"
    flag = tmp_path / "refuse"
    bed = LocalBed.create(tmp_path / "db", count=3)
    try:
        first = bed.bootstrap().primary
        cfg = load_cluster("c1", {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(tmp_path / "state"),
            "failover-mode": "automatic", "failover-falsepositive-heartbeat": False,
            "failover-pre-script": recorder(tmp_path / "pre.sh", "pre", log, fail_flag=flag),
            "failover-post-script": recorder(tmp_path / "post.sh", "post", log),
            "failover-vip-script": recorder(tmp_path / "vip.sh", "vip", log),
        })
        from repman.watcher.failover import failover
        from repman.watcher.switchover import switchover
        routers = build_routers(cfg)
        store = StateStore(cfg.state_dir)

        # 1. The pre-script refuses: nothing changes, the post-script and the VIP move never run.
        flag.touch()
        result = switchover(cfg, store, None, routers=routers)
        assert not result.ok and "change freeze until Monday" in result.sentence
        with bed.connect(first) as conn:
            assert query(conn, "SELECT @@read_only AS r")[0]["r"] == 0
            execute(conn, "CREATE DATABASE still_master")
        for replica in (a for a in bed.addresses if a != first):
            assert master_of(bed, replica) == first.port
        calls = log.read_text().splitlines()
        assert len(calls) == 1 and calls[0].startswith("pre ") and calls[0].endswith(" switchover")

        # 2. Accepted: pre, then the VIP move (with the routers), then post.
        flag.unlink()
        log.unlink()
        result = switchover(cfg, store, None, routers=routers)
        assert result.ok, result.sentence
        second = result.new_primary
        # 3. kill -9 failover: same order, "failover" as the last argument.
        bed.kill(second)
        result = failover(cfg, store, None, routers=routers)
        assert result.ok, result.sentence
        third = result.new_primary
        assert log.read_text().splitlines() == [
            f"pre {args(first, second, 'switchover')}",
            f"vip c1 {first.host} {second.host} {first.port} {second.port} switchover",
            f"post {args(first, second, 'switchover')}",
            f"pre {args(second, third, 'failover')}",
            f"vip c1 {second.host} {third.host} {second.port} {third.port} failover",
            f"post {args(second, third, 'failover')}",
        ]
    finally:
        bed.destroy()

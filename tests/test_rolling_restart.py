"""Rolling restart under writes through a real HAProxy (repman/rolling_restart.py).

Every mariadbd restarts once (its pid changes), replicas first and each back in
sync, the primary last after one switchover: a writer that only knows the proxy's
write port loses nothing, and the only pause in its acknowledgements longer than
a replica-restart blip falls inside the switchover.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from repman.db import Credential, ServerAddress, query
from repman.lab.writer import Writer
from repman.local.haproxy_process import haproxy_binary
from repman.local.testbed import Testbed as LocalBed
from repman.rolling_restart import RollingRestartError, rolling_restart
from repman.routing import build_routers, notify
from repman.routing.base import Topology
from repman.watcher.config import load_cluster
from testkit.env import needs_mariadb
from testkit.standins.haproxy_local import LocalHAProxy

pytestmark = [needs_mariadb, pytest.mark.skipif(haproxy_binary() is None, reason="haproxy binary not installed")]
APP = Credential("app", "app-pw")
BLIP = 1.0  # longest acceptable pause outside the switchover (seconds)


@pytest.fixture
def stack(tmp_path):
    bed = LocalBed.create(tmp_path / "db", count=3)
    proxy = None
    try:
        primary = bed.bootstrap(semisync=True).primary
        Writer.prepare(primary, bed.admin, app=APP)
        proxy = LocalHAProxy(tmp_path / "haproxy", bed.addresses, primary)
        cfg = load_cluster("c1", {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(tmp_path / "state"), "semisync": True,
            "switchover-wait-kill": 1000, "haproxy": True, "haproxy-runtime-api-servers": [proxy.endpoint],
        })
        routers = build_routers(cfg)
        notify(routers, Topology("c1", primary, tuple(a for a in bed.addresses if a != primary),
                                 servers=tuple(bed.addresses)))
        yield bed, proxy, cfg, primary, routers
    finally:
        if proxy is not None:
            proxy.close()
        bed.destroy()


def _pid(bed: LocalBed, addr: ServerAddress) -> int:
    with bed.connect(addr) as conn:
        return int(Path(query(conn, "SELECT @@GLOBAL.pid_file AS f")[0]["f"]).read_text())


@pytest.mark.slow
def test_rolling_restart_under_writes_through_haproxy(stack):
    bed, proxy, cfg, primary, routers = stack
    pids = {a: _pid(bed, a) for a in bed.addresses}
    said: list[tuple[float, str]] = []
    writer = Writer([], APP, pause=0.0, read_timeout=15, through=proxy.write).start()
    try:
        writer.wait_acks(100, timeout=60)
        began = time.monotonic()
        result = rolling_restart(cfg, lambda m: said.append((time.monotonic(), m)), routers)
        ended = time.monotonic()
        writer.wait_acks(100, timeout=60)
    finally:
        writer.stop()
    assert result.old_primary == primary and result.new_primary not in (None, primary)
    assert result.restarted[-1] == primary and set(result.restarted) == set(bed.addresses)
    for a in bed.addresses:
        assert _pid(bed, a) != pids[a], f"{a.url} was not restarted"

    present = set(writer.rows(result.new_primary))
    lost = [a.id for a in writer.acked if a.id not in present]
    assert lost == [], f"acknowledged writes lost: {lost[:20]}"
    assert present - writer.attempted_ids() == set()

    # The switchover window: from the last replica back in sync to the old primary's restart.
    sw_start = max(t for t, m in said if "back in sync" in m)
    sw_end = next(t for t, m in said if m.startswith("restarting the old primary"))
    assert writer.longest_gap(began, sw_start) < BLIP, said
    assert writer.longest_gap(sw_end, ended) < BLIP, said
    assert writer.longest_gap(began, ended) <= max(sw_end - sw_start, BLIP), [(round(t - began, 2), m) for t, m in said]


@pytest.mark.slow
def test_rolling_restart_refuses_with_a_broken_replica(stack, tmp_path, capsys):
    import yaml

    from repman.cli import main

    bed, _proxy, cfg, primary, routers = stack
    replica = next(a for a in bed.addresses if a != primary)
    with bed.connect(replica) as conn:
        query(conn, "STOP SLAVE")
    pids = {a: _pid(bed, a) for a in bed.addresses}
    with pytest.raises(RollingRestartError, match=rf"{replica.url} not replicating"):
        rolling_restart(cfg, lambda m: None, routers)
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"c1": {
        "db-servers-hosts": [a.url for a in bed.addresses],
        "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
        "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
        "monitoring-datadir": str(tmp_path / "state")}}}))
    assert main(["--config", str(config), "rolling-restart"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"repman: rolling restart refused: {replica.url} not replicating (reseed first)"]
    assert {a: _pid(bed, a) for a in bed.addresses} == pids  # nothing restarted

"""End to end through real HAProxy: a writer that only knows the proxy's write port keeps
going across a switchover and a kill -9 failover of a real semi-sync cluster, with zero
acknowledged writes lost, no write reaching a demoted primary once routing moved, and a
read port that never serves the failed node (not even after it restarts un-rejoined)."""

from __future__ import annotations

import time

import pytest

from repman.db import Credential, ServerAddress
from repman.lab.writer import Writer
from repman.local.haproxy_process import haproxy_binary
from repman.local.testbed import Testbed as LocalBed
from repman.routing import build_routers
from repman.watcher.config import load_cluster
from repman.watcher.state_store import StateStore
from testkit.polling import wait_until
from testkit.standins.haproxy_local import LocalHAProxy
from testkit.standins.workload import Reader

pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="haproxy binary not installed")
APP = Credential("app", "app-pw")


@pytest.fixture
def stack(tmp_path):
    bed = LocalBed.create(tmp_path / "db", count=3)
    proxy = None
    try:
        primary = bed.bootstrap(semisync=True).primary
        Writer.prepare(primary, bed.admin, app=APP, origin=True)
        proxy = LocalHAProxy(tmp_path / "haproxy", bed.addresses, primary)
        cfg = load_cluster("c1", {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(tmp_path / "state"), "semisync": True,
            "failover-mode": "automatic", "failover-falsepositive-heartbeat": False,
            "switchover-wait-kill": 1000,
            "haproxy": True, "haproxy-runtime-api-servers": [proxy.endpoint],
        })
        yield bed, proxy, cfg, primary
    finally:
        if proxy is not None:
            proxy.close()
        bed.destroy()


def server_ids(bed: LocalBed) -> dict[ServerAddress, int]:
    return {n_addr: n.server_id for n_addr, n in zip(bed.addresses, bed.nodes)}


def test_writer_through_haproxy_survives_switchover_and_failover(stack):
    from repman.watcher.failover import failover
    from repman.watcher.switchover import switchover

    bed, proxy, cfg, first = stack
    ids = server_ids(bed)
    routers = build_routers(cfg)
    from repman.routing import notify
    from repman.routing.base import Topology
    others = tuple(a for a in bed.addresses if a != first)
    assert notify(routers, Topology("c1", first, others, servers=tuple(bed.addresses))) == {
        f"haproxy:{proxy.endpoint}": "ok"}

    writer = Writer([], APP, pause=0.0, read_timeout=15, through=proxy.write).start()
    reader = Reader(proxy.read, APP).start()
    try:
        writer.wait_acks(50, timeout=60)
        said: list[str] = []

        result = switchover(cfg, StateStore(cfg.state_dir), said.append, routers=routers)
        assert result.ok, (result.sentence, said)
        second = result.new_primary
        after_switchover = time.monotonic()
        writer.wait_acks(50, timeout=60)

        bed.kill(second)
        killed_at = time.monotonic()
        result = failover(cfg, StateStore(cfg.state_dir), said.append, routers=routers)
        assert result.ok, (result.sentence, said)
        third = result.new_primary
        after_failover = time.monotonic()
        writer.wait_acks(50, timeout=60)

        # The failed node comes back but has not rejoined: it must stay out of the read pool.
        bed.start(second)
        wait_until(lambda: bed.running(second), what="the old primary to restart")
        restarted = time.monotonic()
        wait_until(lambda: len(reader.ports_since(restarted)) > 0 and
                 len([t for t, _ in reader.seen if t >= restarted]) >= 30, timeout=60, what="reads after restart")
        writer.wait_acks(20, timeout=60)
    finally:
        writer.stop()
        reader.stop()

    final = writer.rows(third)
    acked = writer.acked
    lost = [w.id for w in acked if w.id not in final]
    assert lost == [], f"acknowledged writes lost: {lost[:20]}"
    unexpected = set(final) - writer.attempted_ids()
    assert unexpected == set()
    # Once switchover() returned (routing moved), writes land on the new primary only, and
    # after the failover on the third one only.
    for w in acked:
        if after_switchover <= w.sent < killed_at:
            assert final[w.id] == ids[second], f"write {w.id} landed on server {final[w.id]}"
        if w.sent >= after_failover:
            assert final[w.id] == ids[third], f"write {w.id} landed on server {final[w.id]}"
    # The read port never answered from the killed (then un-rejoined) node after the kill.
    assert second.port not in reader.ports_since(killed_at)
    assert reader.ports_since(after_failover)                # reads kept being served
    assert third.port not in reader.ports_since(after_failover)

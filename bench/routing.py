"""Routing benchmark on real mariadbd + real HAProxy (prints figures, asserts nothing).

1. Routing latency: time for the HAProxy router to move the write backend's leader over
   the runtime API, and from the start of that call until a fresh connection through the
   write port lands on the new primary.
2. Write unavailability during a real switchover, seen by a writer that only knows the
   HAProxy write port, next to a "direct" writer that connects straight to whichever
   server is writable (an oracle client: the best any routing could do). Also the
   ``routing`` step of the switchover as timed by the watcher.

Usage: /tmp/venv/bin/python bench/routing.py [--moves 50] [--switchovers 5] [--semisync]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repman.db import Credential  # noqa: E402
from repman.lab.writer import Writer  # noqa: E402
from repman.local.testbed import Testbed  # noqa: E402
from repman.routing import build_routers  # noqa: E402
from repman.routing.base import Topology  # noqa: E402
from repman.routing.haproxy import HAProxyRouter  # noqa: E402
from repman.watcher.config import load_cluster  # noqa: E402
from repman.watcher.state_store import StateStore  # noqa: E402
from testkit.standins.haproxy_local import LocalHAProxy, port_via  # noqa: E402

APP = Credential("app", "app-pw")


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values) * 1000:.1f} ms, p90 "
            f"{sorted(values)[int(0.9 * (len(values) - 1))] * 1000:.1f} ms, max {max(values) * 1000:.1f} ms "
            f"(n={len(values)})")


def routing_latency(bed: Testbed, proxy: LocalHAProxy, moves: int) -> tuple[list[float], list[float]]:
    router = HAProxyRouter(proxy.endpoint)
    a, b = bed.addresses[0], bed.addresses[1]
    apply_times, landed_times = [], []
    for i in range(moves):
        new, old = (b, a) if i % 2 == 0 else (a, b)
        topo = Topology("bench", new, (old,), servers=tuple(bed.addresses), reason="switchover")
        t0 = time.perf_counter()
        router.apply(topo)
        t1 = time.perf_counter()
        while True:
            try:
                if port_via(proxy.write, bed.admin) == new.port:
                    break
            except pymysql.MySQLError:
                pass
        t2 = time.perf_counter()
        apply_times.append(t1 - t0)
        landed_times.append(t2 - t0)
    return apply_times, landed_times


def switchovers(bed: Testbed, proxy: LocalHAProxy, count: int, semisync: bool, state: Path) -> None:
    from repman.watcher.switchover import switchover

    cfg = load_cluster("bench", {
        "db-servers-hosts": [a.url for a in bed.addresses],
        "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
        "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
        "monitoring-datadir": str(state), "semisync": semisync,
        "haproxy": True, "haproxy-runtime-api-servers": [proxy.endpoint],
    })
    routers = build_routers(cfg)
    via_proxy = Writer([], APP, pause=0.0, read_timeout=15, name="proxy", through=proxy.write).start()
    # The "direct" oracle connects straight to the server that is the primary now (the admin
    # account asks every node, the application account writes).
    direct = Writer(list(bed.addresses), APP, pause=0.0, read_timeout=15, name="direct",
                    probe=bed.admin).start(base=10**9)
    proxy_gaps, direct_gaps, routing_steps, totals = [], [], [], []
    try:
        via_proxy.wait_acks(200, timeout=60)
        direct.wait_acks(200, timeout=60)
        for _ in range(count):
            time.sleep(0.5)
            start = time.monotonic()
            result = switchover(cfg, StateStore(cfg.state_dir), None, routers=routers)
            end = time.monotonic()
            if not result.ok:
                print(f"  switchover refused/failed: {result.sentence}")
                continue
            via_proxy.wait_acks(100, timeout=60)
            direct.wait_acks(100, timeout=60)
            settle = time.monotonic()
            proxy_gaps.append(via_proxy.longest_gap(start, settle))
            direct_gaps.append(direct.longest_gap(start, settle))
            routing_steps.append(float(result.timings.get("routing", 0.0)))
            totals.append(end - start)
    finally:
        via_proxy.stop()
        direct.stop()
    print(f"switchover total (watcher)           : {ms(totals)}")
    print(f"  'routing' step (notify, HAProxy)   : {ms(routing_steps)}")
    print(f"write unavailability, direct (oracle): {ms(direct_gaps)}")
    print(f"write unavailability, through HAProxy: {ms(proxy_gaps)}")
    extra = [p - d for p, d in zip(proxy_gaps, direct_gaps)]
    print(f"  HAProxy minus direct               : {ms(extra)}")
    print(f"writes acked: proxy {len(via_proxy.acked)}, direct {len(direct.acked)}; "
          f"proxy errors {len(via_proxy.errors)}, direct errors {len(direct.errors)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--switchovers", type=int, default=5)
    parser.add_argument("--semisync", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp:
        base = Path(tmp)
        bed = Testbed.create(base / "db", count=3)
        proxy = None
        try:
            primary = bed.bootstrap(semisync=opts.semisync).primary
            Writer.prepare(primary, bed.admin, app=APP)
            proxy = LocalHAProxy(base / "haproxy", bed.addresses, primary, cluster="bench")
            print(f"3 mariadbd nodes + haproxy, semisync={opts.semisync}")
            apply_times, landed = routing_latency(bed, proxy, opts.moves)
            print(f"router.apply (runtime API, leader move): {ms(apply_times)}")
            print(f"apply start -> new connection lands on new primary: {ms(landed)}")
            HAProxyRouter(proxy.endpoint).apply(Topology(
                "bench", primary, tuple(a for a in bed.addresses if a != primary), servers=tuple(bed.addresses)))
            switchovers(bed, proxy, opts.switchovers, opts.semisync, base / "state")
        finally:
            if proxy is not None:
                proxy.close()
            bed.destroy()


if __name__ == "__main__":
    main()

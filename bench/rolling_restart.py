"""Rolling restart of a 3-node semi-sync cluster under writes through a real HAProxy.

Each run restarts every mariadbd once (replicas one by one, each back in sync,
then one switchover and the old primary last) while a writer that only knows the
proxy's write port inserts rows. Per run: total time, write unavailability (the
longest pause between two acknowledged writes), the time spent in the
switchover, and lost acknowledged writes (must be 0). Then p50/p99 over runs.

    python bench/rolling_restart.py [--runs 5] [--nodes 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repman.db import Credential  # noqa: E402
from repman.lab.writer import Writer  # noqa: E402
from repman.local.testbed import Testbed  # noqa: E402
from repman.rolling_restart import rolling_restart  # noqa: E402
from repman.routing import build_routers, notify  # noqa: E402
from repman.routing.base import Topology  # noqa: E402
from repman.watcher.config import load_cluster  # noqa: E402
from testkit.standins.haproxy_local import LocalHAProxy  # noqa: E402

APP = Credential("app", "app-pw")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=3, help="cluster size (2: the only replica's restart "
                                                              "holds semi-sync commits)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="repman-bench-rr-"))
    bed = Testbed.create(base / "db", count=args.nodes, tags=[*("gtidstrict", "row", "readonly", "noquerycache",
                                                        "smallredolog", "nodurable"), "semisync"])
    proxy = None
    totals, gaps, switchovers, lost_total = [], [], [], 0
    try:
        primary = bed.bootstrap(semisync=True).primary
        Writer.prepare(primary, bed.admin, app=APP)
        proxy = LocalHAProxy(base / "haproxy", bed.addresses, primary)
        cfg = load_cluster("bench", {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(base / "state"), "semisync": True,
            "switchover-wait-kill": 1000, "haproxy": True, "haproxy-runtime-api-servers": [proxy.endpoint],
        })
        routers = build_routers(cfg)
        notify(routers, Topology("bench", primary, tuple(a for a in bed.addresses if a != primary),
                                 servers=tuple(bed.addresses)))
        next_id = 1  # one table for all runs: each run's writer goes on after the previous one's ids
        for run in range(1, args.runs + 1):
            writer = Writer([], APP, pause=0.0, read_timeout=15, through=proxy.write).start(base=next_id - 1)
            try:
                writer.wait_acks(200, timeout=60)
                began = time.monotonic()
                result = rolling_restart(cfg, lambda m: None, routers)
                ended = time.monotonic()
                writer.wait_acks(200, timeout=60)
            finally:
                writer.stop()
            next_id = max(writer.attempted_ids()) + 1
            present = set(writer.rows(result.new_primary))
            lost = [a.id for a in writer.acked if a.id not in present]
            lost_total += len(lost)
            totals.append(ended - began)
            gaps.append(writer.longest_gap(began, ended))
            switchovers.append(result.seconds.get("switchover", 0.0))
            print(f"run {run}: total {totals[-1]:.1f}s, write unavailability {gaps[-1] * 1000:.0f} ms "
                  f"(switchover step {switchovers[-1]:.2f}s), lost {len(lost)}, primary "
                  f"{result.old_primary.url} -> {result.new_primary.url}", flush=True)
        print(f"{args.runs} runs: total p50 {statistics.median(totals):.1f}s p99 {percentile(totals, 99):.1f}s; "
              f"write unavailability p50 {statistics.median(gaps) * 1000:.0f} ms p99 "
              f"{percentile(gaps, 99) * 1000:.0f} ms; lost acknowledged writes {lost_total}")
    finally:
        if proxy is not None:
            proxy.close()
        bed.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

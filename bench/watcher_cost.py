"""What one monitoring tick costs: CPU seconds and wall time, per tick and per server.

Starts one real cluster of the largest size (a master and replicas), then monitors
its first 3, 6, 9... servers with an observe-only ``ClusterMonitor`` and prints,
per size, the mean wall time of a tick, the process CPU time per tick and per
server, and the same with one replica killed (parallel reads keep a dead server
from adding its timeout to everyone else's).

    python bench/watcher_cost.py [--sizes 3,6,9] [--ticks 50]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repman.local.testbed import Testbed  # noqa: E402
from repman.watcher.config import parse_config  # noqa: E402
from repman.watcher.monitor import ClusterMonitor  # noqa: E402


def measure(bed: Testbed, size: int, ticks: int, state: Path) -> tuple[float, float, float]:
    """(median wall s per tick, p95 wall s per tick, CPU s per tick)."""
    servers = bed.addresses[:size]
    cfg = parse_config({"clusters": {"bench": {
        "db-servers-hosts": [a.url for a in servers],
        "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
        "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
        "monitoring-ticker": 1.0, "monitoring-datadir": str(state),
    }}}).cluster()
    mon = ClusterMonitor(cfg, log=lambda m: None, act=False)
    try:
        mon.tick()                                   # warm the thread pool
        walls = []
        cpu0 = time.process_time()
        for _ in range(ticks):
            t0 = time.perf_counter()
            mon.tick()
            walls.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / ticks
    finally:
        mon.close()
    walls.sort()
    return statistics.median(walls), walls[int(0.95 * (len(walls) - 1))], cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="3,6,9", help="cluster sizes to monitor (comma separated)")
    ap.add_argument("--ticks", type=int, default=50, help="ticks measured per size")
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    base = Path(tempfile.mkdtemp(prefix="repman-bench-"))
    print(f"starting {max(sizes)} mariadbd nodes in {base} ...", flush=True)
    bed = Testbed.create(base / "bed", count=max(sizes))
    try:
        bed.bootstrap()
        print(f"{'servers':>7} {'state':<12} {'wall p50 ms':>11} {'wall p95 ms':>11} {'CPU ms/tick':>11} "
              f"{'CPU ms/server':>13}")
        for dead in (False, True):
            if dead:
                bed.kill(bed.addresses[1])
            for size in sizes:
                p50, p95, cpu = measure(bed, size, args.ticks, base / "state")
                print(f"{size:>7} {'1 dead' if dead else 'all up':<12} {p50 * 1000:>11.1f} {p95 * 1000:>11.1f} "
                      f"{cpu * 1000:>11.1f} {cpu * 1000 / size:>13.2f}", flush=True)
    finally:
        bed.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

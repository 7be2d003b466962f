"""Switchover benchmark on a real 3-node cluster under a steady write load (prints figures).

Each switchover moves the primary to the next server, either in-process
(``repman.watcher.switchover.switchover``) or through the ``repman switchover``
command in its own process. The writer connects straight to whichever server is
writable (no proxy), so the write unavailability measured is the database's
part: the longest time without an acknowledged write overlapping the operation.

Usage: /tmp/venv/bin/python bench/switchover.py [--count 20] [--cli-count 5] [--semisync] [--pause 0.001]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fmt, new_cluster, percentile, verdict, write_config  # noqa: E402
from repman.watcher.switchover import switchover  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20, help="in-process switchovers")
    ap.add_argument("--cli-count", type=int, default=5, help="switchovers through the repman command")
    ap.add_argument("--semisync", action="store_true", help="semi-sync replication (AFTER_SYNC)")
    ap.add_argument("--pause", type=float, default=0.001, help="seconds between two inserts of the writer")
    args = ap.parse_args()

    cluster = new_cluster(args.semisync)
    try:
        config = write_config(cluster, cluster.bed.base.parent / "repman.yaml")
        writer = cluster.writer(pause=args.pause).start()
        writer.wait_acks(200)
        gaps: dict[str, list[float]] = {"function": [], "cli": []}
        walls: dict[str, list[float]] = {"function": [], "cli": []}
        failures: list[str] = []
        plan = ["function"] * args.count + ["cli"] * args.cli_count
        for how in plan:
            servers = cluster.servers
            target = servers[(servers.index(cluster.primary()) + 1) % len(servers)]
            t0 = time.monotonic()
            if how == "function":
                res = switchover(cluster.cfg, cluster.store, None, to=target)
                ok, sentence = res.ok, res.sentence
            else:
                done = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(config), "switchover",
                                       "--to", target.url], capture_output=True, text=True, cwd=str(cluster.bed.base))
                ok = done.returncode == 0
                sentence = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
                sentence = sentence[0]
            t1 = time.monotonic()
            if not ok:
                failures.append(sentence)
                continue
            writer.wait_acks(100)
            gaps[how].append(writer.gaps(t0, t1))
            walls[how].append(t1 - t0)
        writer.stop()
        lost, unexpected, errant = verdict(cluster, writer)
    finally:
        cluster.bed.destroy()

    print(f"switchover benchmark: 3 nodes, {'semi-sync AFTER_SYNC' if args.semisync else 'async'}, "
          f"writer pause {args.pause * 1000:.1f} ms, {len(writer.acked)} acknowledged inserts")
    for how in ("function", "cli"):
        if not gaps[how]:
            continue
        g, w = gaps[how], walls[how]
        print(f"  {how:8s} n={len(g):3d}  write unavailability p50 {fmt(percentile(g, 50))}  "
              f"p99 {fmt(percentile(g, 99))}  max {fmt(max(g))}  |  wall time p50 {fmt(percentile(w, 50))}  "
              f"p99 {fmt(percentile(w, 99))}  mean {fmt(statistics.mean(w))}")
    all_gaps = gaps["function"] + gaps["cli"]
    if all_gaps:
        print(f"  all      n={len(all_gaps):3d}  write unavailability p50 {fmt(percentile(all_gaps, 50))}  "
              f"p99 {fmt(percentile(all_gaps, 99))}")
    print(f"  lost acknowledged writes: {lost}   unexpected rows: {unexpected}   errant GTIDs: {errant}   "
          f"writes with unknown outcome (connection killed mid-insert): {len(writer.maybe)}")
    if failures:
        print(f"  refused/failed switchovers: {len(failures)}: {failures[:3]}")
    return 0 if not (lost or unexpected or errant or failures) else 1


if __name__ == "__main__":
    sys.exit(main())

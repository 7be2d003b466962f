"""Nemesis matrix: every fault of issue 9 against one real 3-node semi-sync cluster.

    .venv/bin/python bench/nemesis.py [--rounds 3] [--faults kill9,pause:8,isolate...]

The watcher loop runs in this process (monitoring-ticker 1 s, automatic failover,
false-positive guards on), two writers record every acknowledgement (one with a
2 s read timeout, one without). Per fault it prints: rounds, write
unavailability p50/p99 (fault -> first acknowledged insert sent after the fault),
failovers, lost, unexpected and split-brain windows, checked after the fault's
rounds on the converged cluster. Partitions need root and iptables (see
repman/lab/faults.py); they are skipped with the reason otherwise.
"""

from __future__ import annotations

import argparse
import sys

from common import fmt, new_cluster, percentile  # noqa: E402
from repman.lab.checker import check  # noqa: E402
from repman.lab.faults import Network, iptables_available  # noqa: E402
from repman.lab.nemesis import NO_FAILOVER, Lab, run_round  # noqa: E402
from repman.lab.writer import Writer  # noqa: E402
from repman.watcher.loop import Watcher  # noqa: E402

MATRIX = ("kill9", "pause:3", "pause:8", "pause:15", "pause:25", "pause:40", "isolate:10", "isolate-from-replicas:15",
          "isolate-from-watcher:15", "heal-during-failover:10", "kill-replica-during-failover")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--faults", default=",".join(MATRIX), help="comma-separated fault[:seconds]")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    no_net = iptables_available()
    cluster = new_cluster(True, failover_mode="automatic", monitoring_ticker=1, failover_limit=0,
                          failover_time_limit=0)
    Writer.prepare(cluster.primary(), cluster.bed.admin)
    watcher = Watcher.for_clusters([cluster.cfg])
    monitor = next(iter(watcher.monitors.values()))
    lab = Lab(cluster.bed, monitor, [])
    monitor._sink = lab.log
    rows: list[str] = []
    failures: list[str] = []
    seen_lost: set[int] = set()
    seen_unexpected: set[int] = set()
    total = 0
    try:
        if no_net is None:
            lab.network = Network().open()
            lab.enroll_all()
            lab.reconnect_replicas()
        watcher.start()
        total = 0
        for number, spec in enumerate(faults):
            name, _, secs = spec.partition(":")
            if (name.startswith(("isolate", "heal"))) and no_net is not None:
                rows.append(f"{spec:<30} skipped: {no_net}")
                continue
            # Fresh writers per fault: the convergence check needs them stopped at the end.
            lab.writers = [Writer(cluster.servers, cluster.bed.admin, name=f"rt{number}", read_timeout=2.0),
                           Writer(cluster.servers, cluster.bed.admin, name=f"nort{number}", read_timeout=None)]
            lab.writers[0].start(base=number * 10**9)
            lab.writers[1].start(base=number * 10**9 + 10**8)
            lab.writers[0].wait_acks(100)
            outages: list[float] = []
            failovers = 0
            first_cut = len(lab.faults_at)
            try:
                for _ in range(args.rounds):
                    r = run_round(lab, name, seconds=float(secs or 8))
                    failovers += int(r.failed_over and r.new is not None)
                    if r.unavailable is not None:
                        outages.append(r.unavailable)
            except AssertionError as exc:
                failures.append(f"{spec}: {exc}")
            for w in lab.writers:
                w.stop(timeout=30)
            total += sum(len(w.acked) for w in lab.writers)
            primary = cluster.assert_converged()
            verdict = check(lab.writers, primary, cluster.servers, cluster.bed.admin, lab.faults_at)
            lost, unexpected = verdict.lost, verdict.unexpected
            seen_lost |= verdict.lost
            seen_unexpected |= verdict.unexpected
            cuts = lab.faults_at[first_cut:]
            windows = verdict.split_brain
            failures += [f"{spec}: {w}" for w in windows] + [f"{spec}: errant {g}" for g in verdict.errant]
            unavail = (f"{fmt(percentile(outages, 50)):>8} {fmt(percentile(outages, 99)):>8}" if outages
                       else f"{'-':>8} {'-':>8}")
            expect = str(failovers) if name not in NO_FAILOVER else (
                "0 (expected)" if failovers == 0 else f"{failovers} (WRONG)")
            if name in NO_FAILOVER and failovers:
                failures.append(f"{spec}: {failovers} failover(s) where none may happen")
            rows.append(f"{spec:<30} {len(cuts):>6} {unavail} {expect:>13} {len(lost):>5} {len(unexpected):>10} "
                        f"{len(windows):>11}  errant {len(verdict.errant)}")
            print(rows[-1], flush=True)
    finally:
        watcher.stop()
        for w in lab.writers:
            w.stop(timeout=5)
        if lab.network is not None:
            lab.network.close()
        cluster.bed.destroy()
    print(f"\nnemesis: 3 nodes, semi-sync AFTER_SYNC without fallback, watcher loop (ticker 1 s, automatic, "
          f"false-positive guards on), writers with a 2 s read timeout and without; {args.rounds} round(s) per fault")
    print(f"{'fault[:seconds]':<30} {'rounds':>6} {'p50':>8} {'p99':>8} {'failovers':>13} {'lost':>5} "
          f"{'unexpected':>10} {'split-brain':>11}")
    for row in rows:
        print(row)
    for f in failures:
        print(f"FAILED {f}")
    print(f"acknowledged inserts: {total}; unavailability = fault -> first acknowledged "
          "insert sent after it (direct writers; through HAProxy: not measured yet)")
    return 1 if failures or seen_lost or seen_unexpected else 0


if __name__ == "__main__":
    sys.exit(main())

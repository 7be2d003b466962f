"""Failover benchmark: kill -9 the master under writes, let the watcher loop fail over (prints figures).

Detection and decision are the real monitor loop's (``repman.watcher.loop.Watcher``,
failover-mode automatic) with the false-positive checks on: ping counter, the
replica heartbeat check and, unless ``--no-replicas-agree``, the replicas-agree
path (the master is Failed after ``--agree-pings`` failed pings when every replica
lost it too). Measured per round: time from the kill to the loop's failover
decision, which path decided (replicas agree or ping counter), and time to the
first acknowledged write on the new master, seen by a writer that connects
straight to whichever server is writable. After each round the old master is
restarted and the loop rejoins it (autorejoin) before the next kill.

Usage: /tmp/venv/bin/python bench/failover.py [--rounds 10] [--ticker 1] [--pings 5]
       [--agree-pings 2] [--no-replicas-agree] [--heartbeat-timeout 3] [--semisync]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fmt, new_cluster, percentile, verdict  # noqa: E402
from repman.watcher.loop import Watcher  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--ticker", type=float, default=1.0, help="monitoring-ticker (s)")
    ap.add_argument("--pings", type=int, default=5, help="failover-falsepositive-ping-counter")
    ap.add_argument("--agree-pings", type=int, default=2, help="failover-falsepositive-replicas-agree-pings")
    ap.add_argument("--no-replicas-agree", dest="agree", action="store_false",
                    help="failover-falsepositive-replicas-agree off: ping counter and heartbeat check only")
    ap.add_argument("--heartbeat-timeout", type=float, default=3.0,
                    help="failover-falsepositive-heartbeat-timeout (s)")
    ap.add_argument("--heartbeat-period", type=float, default=1.0, help="replication-heartbeat-period (s)")
    ap.add_argument("--semisync", action="store_true", default=True)
    ap.add_argument("--async", dest="semisync", action="store_false")
    ap.add_argument("--verbose", action="store_true", help="print the watcher's log")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(message)s")

    cluster = new_cluster(
        args.semisync, failover_mode="automatic", monitoring_ticker=args.ticker,
        failover_falsepositive_ping_counter=args.pings, failover_falsepositive_heartbeat=True,
        failover_falsepositive_heartbeat_timeout=args.heartbeat_timeout,
        replication_heartbeat_period=args.heartbeat_period, failover_limit=0, failover_time_limit=0,
        failover_falsepositive_replicas_agree=args.agree,
        failover_falsepositive_replicas_agree_pings=args.agree_pings,
    )
    outages: list[float] = []
    detections: list[float] = []
    paths: Counter[str] = Counter()
    events: list[tuple[float, str]] = []
    decided: list[float] = []
    failures: list[str] = []
    watcher = Watcher.for_clusters([cluster.cfg])
    monitor = next(iter(watcher.monitors.values()))
    previous_sink = monitor._sink

    def record(message: str) -> None:
        events.append((time.monotonic(), message))
        if previous_sink is not None:
            previous_sink(message)
        elif args.verbose:
            logging.getLogger("repman.watcher").info("%s: %s", monitor.name, message)
    monitor._sink = record
    try:
        writer = cluster.writer(pause=0.001).start()
        watcher.start()
        writer.wait_acks(200)
        warmup = max(args.heartbeat_timeout, args.ticker) + 2 * args.ticker + 1
        for round_no in range(args.rounds):
            time.sleep(warmup)                 # the heartbeat history must cover its window again
            old = cluster.primary()
            cluster.bed.kill(old)
            killed = time.monotonic()
            deadline = killed + 120
            while time.monotonic() < deadline:
                acks = writer.acked
                if acks and acks[-1].at > killed and acks[-1].server != old.url:
                    break
                time.sleep(0.005)
            else:
                failures.append(f"round {round_no}: no write on a new master within 120 s")
                break
            first = next(a for a in writer.acked if a.at > killed and a.server != old.url)
            outages.append(first.at - killed)
            decision = next(((t, m) for t, m in events if t > killed and "failing over to" in m), None)
            if decision is not None:
                detections.append(decision[0] - killed)
                paths["replicas agree" if "lost it too" in decision[1] else "ping counter"] += 1
            result = monitor.last_result
            if result is not None and result.kind == "failover":
                decided.append(result.timings.get("total", float("nan")))
            cluster.bed.start(old)
            new = cluster.primary()

            def rejoined() -> bool:
                rows = cluster.sql(old, "SHOW SLAVE STATUS")
                return bool(rows) and int(rows[0]["Master_Port"]) == new.port \
                    and rows[0]["Slave_IO_Running"] == "Yes" and rows[0]["Slave_SQL_Running"] == "Yes"
            try:
                cluster.wait_for(rejoined, timeout=60, what=f"{old.url} to rejoin")
            except AssertionError as exc:
                failures.append(f"round {round_no}: {exc}")
                break
        watcher.stop()
        writer.stop()
        lost, unexpected, errant = verdict(cluster, writer)
    finally:
        watcher.stop()
        cluster.bed.destroy()

    print(f"failover benchmark: 3 nodes, {'semi-sync AFTER_SYNC' if args.semisync else 'async'}, watcher loop "
          f"(ticker {args.ticker:g} s, ping counter {args.pings}, heartbeat check on: timeout "
          f"{args.heartbeat_timeout:g} s, heartbeat period {args.heartbeat_period:g} s; replicas-agree "
          f"{f'on after {args.agree_pings} pings' if args.agree else 'off'}), {len(outages)} kill -9")
    if detections:
        print(f"  kill -> failover decision: p50 {fmt(percentile(detections, 50))}  "
              f"p99 {fmt(percentile(detections, 99))}  max {fmt(max(detections))}   decided by: "
              + ", ".join(f"{name} {n}" for name, n in sorted(paths.items())))
    if outages:
        print(f"  kill -> first acknowledged write on the new master: p50 {fmt(percentile(outages, 50))}  "
              f"p99 {fmt(percentile(outages, 99))}  min {fmt(min(outages))}  max {fmt(max(outages))}  "
              f"mean {fmt(statistics.mean(outages))}")
    if decided:
        print(f"  failover operation itself (from the loop's decision): p50 {fmt(percentile(decided, 50))}  "
              f"max {fmt(max(decided))}")
    print(f"  lost acknowledged writes: {lost}   unexpected rows: {unexpected}   errant GTIDs: {errant}   "
          f"acknowledged inserts: {len(writer.acked)}")
    for f in failures:
        print(f"  FAILED {f}")
    return 0 if not (lost or unexpected or errant or failures) else 1


if __name__ == "__main__":
    sys.exit(main())

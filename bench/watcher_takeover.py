"""Leader takeover of HA watchers: kill -9 the leader `repman watch`, time until another holds the cluster.

Real pieces only: a 3-node cluster of mariadbd, one etcd-server, N `repman watch` processes of this
checkout sharing both (an `ha:` section). Each round kills the leader watcher's process group with
SIGKILL (no lease revoke: its lease must expire in etcd), measures the time until another watcher's
name is in `<prefix>/<cluster>/leader` (from then its gate is open: it acts at its next tick), then
starts the killed watcher again. Prints p50/p99/max; the bound is ha-lease-ttl plus one renewal
interval (min(ttl/3, 1 s)) plus a request.

Usage: .venv/bin/python bench/watcher_takeover.py [--rounds 10] [--watchers 3] [--ttl 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, fmt, new_cluster, percentile, write_config  # noqa: E402
from testkit.etcd import EtcdCluster  # noqa: E402
from testkit.polling import wait_until  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--watchers", type=int, default=3)
    ap.add_argument("--ttl", type=int, default=2, help="ha-lease-ttl (seconds)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="repman-takeover-"))
    etcd = EtcdCluster(base / "etcd", size=1).start()
    cluster = new_cluster(semisync=False)
    client = etcd.client()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    name = cluster.cfg.name
    leader_key = f"/bench/{name}/leader".encode()

    def start(watcher: str) -> None:
        path = write_config(cluster, base / f"{watcher}.yaml")
        raw = yaml.safe_load(path.read_text())
        raw["clusters"][name]["monitoring-datadir"] = str(base / watcher)
        raw["ha"] = {"ha-etcd-endpoints": etcd.endpoints, "ha-etcd-prefix": "/bench", "ha-lease-ttl": args.ttl,
                     "ha-watcher-name": watcher, "ha-etcd-timeout": 0.5}
        path.write_text(yaml.safe_dump(raw))
        log = open(base / f"{watcher}.log", "ab")  # noqa: SIM115 - the process writes it until the end
        procs[watcher] = subprocess.Popen(
            [sys.executable, "-m", "repman.cli", "--config", str(path), "watch", "--no-api"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})

    def holder() -> str:
        kv = client.get(leader_key)
        return kv.value.decode() if kv is not None else ""

    def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            wait_until(cond, timeout, what, every=0.01)
        except AssertionError as exc:
            raise SystemExit(str(exc)) from None

    takeovers: list[float] = []
    try:
        for i in range(args.watchers):
            start(f"w{i + 1}")
        wait(lambda: holder() != "", 30, "a first leader")
        time.sleep(2 * args.ttl)             # every watcher up and renewing
        for _ in range(args.rounds):
            first = holder()
            os.killpg(procs[first].pid, signal.SIGKILL)
            killed = time.monotonic()
            procs[first].wait(10)
            wait(lambda: holder() not in ("", first), 5 * args.ttl, "a new leader")
            takeovers.append(time.monotonic() - killed)
            start(first)
            time.sleep(1.5)                  # the restarted watcher is a follower again
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
        cluster.bed.destroy()
        etcd.destroy()
    bound = args.ttl + min(args.ttl / 3, 1.0) + 0.5
    print(f"leader takeover, {args.watchers} `repman watch` processes, ha-lease-ttl {args.ttl} s, "
          f"{len(takeovers)} kill -9 of the leader watcher:")
    print(f"  p50 {fmt(percentile(takeovers, 50))}  p99 {fmt(percentile(takeovers, 99))}  "
          f"max {fmt(max(takeovers))}  (bound ttl + renewal interval + request: {fmt(bound)})")
    return 0 if max(takeovers) <= bound else 1


if __name__ == "__main__":
    raise SystemExit(main())

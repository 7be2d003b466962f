"""Container failover benchmark: stacks/Pulumi.docker.yaml on a real Docker engine (prints figures).

Per round: a fresh cluster (3 MariaDB containers, HAProxy and watcher containers) brought up by
the embedded engine, a recording writer through the HAProxy container, ``docker kill`` of the
primary's container; measured: time from the kill to the first acknowledged write through the
proxy, lost and unexpected writes; then ``down``. Also the time of ``up`` and of a warm
``scripts/build-images.sh``. Needs root and the images (the script builds them, starting dockerd).

Usage: .venv/bin/python bench/container_failover.py [--rounds 3] [--ticker 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repman.db import Credential, ServerAddress  # noqa: E402
from repman.lab.writer import Writer  # noqa: E402
from repman.local.ports import free_port_block  # noqa: E402
from testkit.polling import wait_until  # noqa: E402

ADMIN = Credential("repman", "bench-admin-Pw1")
TAGS = ["gtidstrict", "row", "readonly", "noquerycache", "smallredolog", "nodurable", "semisync"]


def engine(command: str, config: dict[str, str]) -> float:
    args = [sys.executable, "-m", "embedded_engine", command, "--yes", "--stack", "docker"]
    for key, value in config.items():
        args += ["-c", f"{key}={value}"]
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": "repman-example"}
    started = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return time.monotonic() - started


def one_round(state: Path, ticker: float) -> dict[str, float]:
    name, base = f"bk{uuid.uuid4().hex[:6]}", free_port_block(5)
    config = {
        "cluster-name": name, "prov-db-image": "repman/mariadb:10.11-standin",
        "prov-watcher-image": "repman/watcher:0.1.0", "prov-proxy-image": "repman/haproxy:2.6-standin",
        "db-servers-base-port": str(base), "prov-state-dir": str(state / name), "prov-protect": "false",
        "prov-keep-data-on-delete": "false", "prov-db-tags": json.dumps(TAGS), "failover-mode": "automatic",
        "monitoring-ticker": str(ticker), "db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
        "replication-credential": "repl:bench-repl-Pw2", "haproxy": "true",
        "haproxy-write-port": str(base + 3), "haproxy-read-port": str(base + 4),
    }
    try:
        up = engine("up", config)
        proxy = ServerAddress("127.0.0.1", base + 3)
        try:
            wait_until(lambda: Writer([proxy], ADMIN).primary() is not None, timeout=60,
                       what="the proxy to reach the primary", every=0.2)
        except AssertionError:
            raise SystemExit("proxy never reached the primary") from None
        Writer.prepare(proxy, ADMIN)
        writer = Writer([proxy], ADMIN, name="bench").start()
        writer.wait_acks(300, timeout=60)
        subprocess.run(["docker", "kill", f"{name}-db1"], check=True, capture_output=True)
        killed = time.monotonic()
        writer.wait_acks(300, timeout=120)
        writer.stop()
        first_after = min(a.at for a in writer.acked if a.at > killed)
        survivors = [ServerAddress("127.0.0.1", base + 1), ServerAddress("127.0.0.1", base + 2)]
        primary = Writer(survivors, ADMIN).primary()
        lost, unexpected = writer.verify(primary) if primary else ({-1}, set())
        return {"up_s": up, "kill_to_write_s": first_after - killed, "lost": len(lost),
                "unexpected": len(unexpected), "acks": len(writer.acked)}
    finally:
        engine("down", config)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ticker", type=float, default=0.5, help="monitoring-ticker (s)")
    args = ap.parse_args()
    started = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    build = time.monotonic() - started
    rounds = []
    with TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            r = one_round(Path(tmp), args.ticker)
            rounds.append(r)
            print(f"round {i + 1}: up {r['up_s']:.1f}s, kill -> first write through the proxy "
                  f"{r['kill_to_write_s']:.2f}s, acks {r['acks']}, lost {r['lost']}, unexpected {r['unexpected']}",
                  flush=True)
    print(f"scripts/build-images.sh (this run): {build:.1f}s")
    print(f"up (3 nodes + HAProxy + watcher containers): median {statistics.median(r['up_s'] for r in rounds):.1f}s")
    print(f"docker kill of the primary -> first acknowledged write through HAProxy: median "
          f"{statistics.median(r['kill_to_write_s'] for r in rounds):.2f}s, max "
          f"{max(r['kill_to_write_s'] for r in rounds):.2f}s (monitoring-ticker {args.ticker}s)")
    print(f"lost {sum(r['lost'] for r in rounds)}, unexpected {sum(r['unexpected'] for r in rounds)} "
          f"over {len(rounds)} rounds")
    return 0 if all(r["lost"] == 0 and r["unexpected"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What GET /metrics costs: scrape latency, exposition size, and the tick's wall time with and
without a client scraping as fast as it can.

Starts one real 3-node cluster, a real watcher (ticker 1 s) with its HTTP API, then
scrapes /metrics N times in a row (p50/p99 latency, bytes), and compares the monitoring
tick's wall time (``repman_tick_duration_seconds`` is the same number) over the same
number of ticks while idle and while --clients threads scrape in a loop.

    python bench/metrics.py [--scrapes 500] [--ticks 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repman.local.testbed import Testbed  # noqa: E402
from testkit.api_client import Running  # noqa: E402

AUTH = {"Authorization": "Basic " + base64.b64encode(b"eve:eve-pass").decode()}


def scrape(url: str) -> int:
    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=10) as resp:
        return len(resp.read())


def tick_walls(r: Running, ticks: int) -> list[float]:
    out, seen = [], r.mon.ticks
    while len(out) < ticks:
        time.sleep(0.05)
        if r.mon.ticks != seen:
            seen = r.mon.ticks
            out.append(r.mon.last_tick_seconds)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scrapes", type=int, default=500)
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="repman-bench-metrics-"))
    bed = Testbed.create(base / "bed", count=3)
    try:
        bed.bootstrap()
        with Running(bed, base, {}, monitoring_ticker=1.0) as r:
            url = r.url("/metrics")
            size = scrape(url)
            lat = []
            for _ in range(args.scrapes):
                t0 = time.perf_counter()
                scrape(url)
                lat.append(time.perf_counter() - t0)
            print(f"scrape of 3 servers: {size} bytes, p50 {pct(lat, 0.5) * 1000:.2f} ms, "
                  f"p99 {pct(lat, 0.99) * 1000:.2f} ms over {args.scrapes} scrapes")
            idle = tick_walls(r, args.ticks)
            stop, done = threading.Event(), [0]

            def loop() -> None:
                while not stop.is_set():
                    scrape(url)
                    done[0] += 1
            threads = [threading.Thread(target=loop, daemon=True) for _ in range(args.clients)]
            for t in threads:
                t.start()
            t0 = time.monotonic()
            busy = tick_walls(r, args.ticks)
            rate = done[0] / (time.monotonic() - t0)
            stop.set()
            for t in threads:
                t.join(15)
            print(f"tick wall time idle: median {statistics.median(idle) * 1000:.1f} ms, "
                  f"p95 {pct(idle, 0.95) * 1000:.1f} ms ({args.ticks} ticks)")
            print(f"tick wall time under {args.clients} scraping clients ({rate:.0f} scrapes/s): "
                  f"median {statistics.median(busy) * 1000:.1f} ms, p95 {pct(busy, 0.95) * 1000:.1f} ms")
    finally:
        bed.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

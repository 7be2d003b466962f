"""The watcher's HTTP API under load: requests per second and latency of the status route and of
the HAProxy health check, the monitoring tick with and without that load, and what idle TCP
clients do to the health checks (issue 14's production-server point).

One real 3-node cluster, a real watcher (ticker 1 s) with its API as `repman watch` serves it
(stdlib ``ThreadingHTTPServer``). Phases, each over --seconds:
1. idle: the tick's wall time, no client;
2. --clients threads, each with its own kept-alive connection, alternating
   ``GET /api/clusters/c1`` (viewer login) and ``GET /primary/<server>`` (anonymous health check):
   requests/s and p50/p99 per route, the tick's wall time meanwhile;
3. --idle-clients TCP connections opened and left silent, then ``/primary`` probed on fresh
   connections: how long a health check waits (a stalled check is what takes HAProxy's routing down).

    python bench/api.py [--clients 50] [--seconds 10] [--idle-clients 5]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics import pct, tick_walls  # noqa: E402  (bench/metrics.py: the same two measures)
from repman.local.testbed import Testbed  # noqa: E402
from repman.tls import ensure_server_certificates  # noqa: E402
from testkit.api_client import Running  # noqa: E402

VIEWER = {"Authorization": "Basic " + base64.b64encode(b"eve:eve-pass").decode()}


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    where = urlsplit(url)
    if where.scheme == "https":
        return http.client.HTTPSConnection(where.hostname, where.port, timeout=timeout,
                                           context=ssl._create_unverified_context())  # noqa: S323 - local self-signed
    return http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> int:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def _load(base: str, paths: list[tuple[str, dict[str, str]]], stop: threading.Event,
          out: dict[str, list[float]], errors: list[str], lock: threading.Lock) -> None:
    conn = _connection(base, 10)
    i = 0
    while not stop.is_set():
        path, headers = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            _get(conn, path, headers)
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                errors.append(f"{path}: {exc}")
            conn.close()
            conn = _connection(base, 10)
            continue
        with lock:
            out[path].append(time.perf_counter() - t0)
    conn.close()


def _idle_probe(r: Running, base: str, health: str, idle: int, probes: int) -> list[float]:
    where = urlsplit(base)
    silent = [socket.create_connection((where.hostname, where.port), timeout=5) for _ in range(idle)]
    waits = []
    try:
        for _ in range(probes):
            t0 = time.perf_counter()
            try:
                conn = _connection(base, 30)
                _get(conn, health, {})
                conn.close()
            except (OSError, http.client.HTTPException):
                pass
            waits.append(time.perf_counter() - t0)
    finally:
        for s in silent:
            s.close()
    return waits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients with kept-alive connections")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the load phase")
    ap.add_argument("--ticks", type=int, default=8, help="ticks measured per phase")
    ap.add_argument("--idle-clients", type=int, default=5, help="silent TCP connections in phase 3")
    ap.add_argument("--tls", action="store_true", help="serve HTTPS (api-tls-cert/-key, a throw-away CA)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="repman-bench-api-"))
    bed = Testbed.create(root / "bed", count=3)
    try:
        bed.bootstrap()
        api: dict[str, str] = {}
        if args.tls:
            ensure_server_certificates(root / "tls", hosts=["127.0.0.1"])
            api = {"api-tls-cert": str(root / "tls" / "server-cert.pem"),
                   "api-tls-key": str(root / "tls" / "server-key.pem")}
        with Running(bed, root, api, monitoring_ticker=1.0) as r:
            base = r.url("")
            master = r.mon.master
            health = f"/primary/{master.url}" if master else "/primary"
            status = "/api/clusters/c1"
            idle = tick_walls(r, args.ticks)
            out: dict[str, list[float]] = {status: [], health: []}
            errors: list[str] = []
            lock, stop = threading.Lock(), threading.Event()
            threads = [threading.Thread(target=_load, daemon=True,
                                        args=(base, [(status, VIEWER), (health, {})], stop, out, errors, lock))
                       for _ in range(args.clients)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            busy = tick_walls(r, args.ticks)
            time.sleep(max(0.0, args.seconds - (time.monotonic() - t0)))
            stop.set()
            for t in threads:
                t.join(15)
            elapsed = time.monotonic() - t0
            print(f"watcher API ({'HTTPS' if args.tls else 'HTTP'}) under {args.clients} kept-alive clients for "
                  f"{elapsed:.1f} s (3 real servers, ticker 1 s, stdlib ThreadingHTTPServer):")
            for path, lat in out.items():
                if lat:
                    print(f"  GET {path:<38} {len(lat) / elapsed:7.0f} req/s   p50 {pct(lat, 0.5) * 1000:7.2f} ms"
                          f"   p99 {pct(lat, 0.99) * 1000:7.2f} ms")
            print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
            idle_med, busy_med = statistics.median(idle), statistics.median(busy)
            print(f"  tick wall time: idle median {idle_med * 1000:.1f} ms, under load {busy_med * 1000:.1f} ms "
                  f"({(busy_med / idle_med - 1) * 100:+.0f}%; goal: at most +10%)")
            waits = _idle_probe(r, base, health, args.idle_clients, 5)
            print(f"  /primary on a fresh connection with {args.idle_clients} silent TCP clients open: "
                  f"median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms "
                  "(goal: under 100 ms)")
    finally:
        bed.destroy()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

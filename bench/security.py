"""What security costs: verified-TLS connects, and the write path during rotations.

1. Connect + ``SELECT 1`` latency to an ``ssl``-tag server, as the watcher does every
   tick: pymysql's default (TLS, certificate not checked: repman before issue 15)
   versus ``db-servers-tls-ca-cert`` (certificate and host name verified), with the
   ``mariadb`` client's own verified connect in the same run for reference.
2. ``rotate-passwords`` and ``certificates rotate`` on a live 3-node cluster with
   the recording writer: duration, the longest gap between two acknowledged
   writes, lost/unexpected writes, errant GTIDs.

    python bench/security.py [--connects 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import verdict  # noqa: E402
from repman.bootstrap import BootstrapRequest, bootstrap  # noqa: E402
from repman.cert_rotation import rotate_certificates  # noqa: E402
from repman.db import connect, query  # noqa: E402
from repman.db_tls import register  # noqa: E402
from repman.local.testbed import DEFAULT_TAGS, Testbed  # noqa: E402
from repman.rotation import rotate_replication  # noqa: E402
from repman.watcher.config import load_cluster  # noqa: E402
from repman.watcher.state_store import StateStore  # noqa: E402
from testkit.cluster import HACluster  # noqa: E402


def _cluster(base: Path) -> tuple[HACluster, Path]:
    ca_dir = base / "ca"
    bed = Testbed.create(base / "db", count=3, tags=[*DEFAULT_TAGS, "ssl"], ca_dir=ca_dir)
    bootstrap(BootstrapRequest(servers=bed.addresses, admin=bed.admin, replication=bed.replication,
                               monitoring=bed.monitoring, replication_ssl=True))
    secret = base / "replication-credential"
    secret.write_text(f"{bed.replication.user}:{bed.replication.password}\n")
    watcher_ca = base / "watcher-ca.pem"
    shutil.copyfile(ca_dir / "ca.pem", watcher_ca)
    cfg = load_cluster("bench", {
        "db-servers-hosts": [a.url for a in bed.addresses],
        "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
        "replication-credential": {"file": str(secret)}, "replication-use-ssl": True,
        "db-servers-tls-ca-cert": str(watcher_ca), "monitoring-datadir": str(base / "state")})
    return HACluster(bed, cfg, StateStore(cfg.state_dir, keep=5)), ca_dir


def _connect_ms(c: HACluster, ca: str, n: int) -> tuple[float, float]:
    """(unverified, verified) medians, interleaved so that load noise hits both alike."""
    addr = c.servers[0]
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * n):
        verify = bool(i % 2)
        register([addr], ca if verify else "")
        t = time.perf_counter()
        with connect(addr, c.bed.admin) as conn:
            query(conn, "SELECT 1")
        times[verify].append((time.perf_counter() - t) * 1000)
    register([addr], ca)
    return statistics.median(times[False]), statistics.median(times[True])


def _client_ms(c: HACluster, ca: Path, n: int) -> float:
    addr = c.servers[0]
    cmd = ["mariadb", f"--host={addr.host}", f"--port={addr.port}", f"--user={c.bed.admin.user}",
           f"--ssl-ca={ca}", "--ssl-verify-server-cert", "-e", "SELECT 1"]
    env = {"MYSQL_PWD": c.bed.admin.password, "PATH": "/usr/bin:/bin"}
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _during(c: HACluster, action, run: int) -> tuple[float, float, tuple[int, int, int]]:
    w = c.writer(name=f"w{run}", pause=0.002)
    w.start(base=run * 10_000_000)
    try:
        w.wait_acks(300)
        t0 = time.monotonic()
        action()
        t1 = time.monotonic()
        w.wait_acks(300)
    finally:
        w.stop()
    c.assert_converged()
    return t1 - t0, w.gaps(t0, t1), verdict(c, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connects", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="repman-secbench-"))
    c, ca_dir = _cluster(base)
    try:
        unverified, verified = _connect_ms(c, str(base / "watcher-ca.pem"), args.connects)
        client = _client_ms(c, ca_dir / "ca.pem", max(10, args.connects // 10))
        print(f"connect+SELECT 1, median of {args.connects}: TLS unverified {unverified:.2f} ms, "
              f"TLS verified {verified:.2f} ms (x{verified / unverified:.2f}); "
              f"mariadb client --ssl-verify-server-cert (process start included) {client:.1f} ms")
        runs = iter(range(1, 1000))
        for name, action in (
            ("rotate-passwords", lambda: rotate_replication(c.cfg, Path(c.cfg.secret_files["replication-credential"]))),
            ("certificates rotate", lambda: rotate_certificates(c.cfg, ca_dir)),
        ):
            rows = [_during(c, action, next(runs)) for _ in range(args.runs)]
            worst = [v for _, _, v in rows]
            print(f"{name}: {args.runs} runs, duration median {statistics.median(r[0] for r in rows):.2f} s, "
                  f"longest write gap median {statistics.median(r[1] for r in rows) * 1000:.0f} ms "
                  f"(max {max(r[1] for r in rows) * 1000:.0f} ms), lost {sum(v[0] for v in worst)}, "
                  f"unexpected {sum(v[1] for v in worst)}, errant GTIDs {sum(v[2] for v in worst)}")
    finally:
        register(c.servers, "")
        c.bed.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Seeding throughput against the raw pipe, and time from ``up`` to a replicating new node.

Part 1 (same run, same data, alternating order): the plain pipeline
``mariadb-backup --backup --stream=xbstream | mbstream -x`` then ``--prepare``,
timed from a shell, and repman's ``seed_node`` (the same two tools with a
counting splice in between, plus install, attach and catch-up) on a local
cluster holding ``--size-mb`` of InnoDB data. Prints MiB/s for stream+prepare of
both and the ratio (goal >= 0.9), and repman's total to a replicating node.

Part 2 (``--engine``): the local stack's program under the embedded engine on
x2.tiny with the same data and purged binlogs, then ``up`` on x3.tiny timed
until the new node replicates (it must be seeded: the binlogs are gone).

    python bench/seeding.py [--size-mb 1024] [--runs 3] [--engine]   (about a minute at the defaults)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repman.db import Credential, ServerAddress, execute, query, session  # noqa: E402
from repman.local.ports import free_port_block  # noqa: E402
from repman.local.testbed import Testbed  # noqa: E402
from repman.seeding import SeedRequest, purge_binlogs, seed_node  # noqa: E402

ROW = 1024  # bytes of payload per row


def load(primary: ServerAddress, admin: Credential, size_mb: int) -> float:
    """Fill bench.data to about ``size_mb`` MiB by doubling; returns the MiB on disk."""
    with session(primary, admin, read_timeout=3600) as conn:
        execute(conn, "CREATE DATABASE IF NOT EXISTS bench")
        execute(conn, "CREATE TABLE IF NOT EXISTS bench.data (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                      "payload VARBINARY(1100)) ENGINE=InnoDB")
        execute(conn, "INSERT INTO bench.data (payload) VALUES (RANDOM_BYTES(1024))")
        rows = 1
        while rows * ROW < size_mb * 2**20:
            execute(conn, "INSERT INTO bench.data (payload) SELECT RANDOM_BYTES(1024) FROM bench.data "
                          "LIMIT %s", (min(rows, size_mb * 2**20 // ROW - rows),))
            rows = int(query(conn, "SELECT COUNT(*) AS n FROM bench.data")[0]["n"])
        return rows * ROW / 2**20


def raw_pipeline(source_cnf: Path, source: ServerAddress, admin: Credential, work: Path) -> tuple[float, int]:
    """The physical limit: the two tools piped by the shell, then prepare. Returns (s, bytes)."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    opts = work / "opts.cnf"
    opts.write_text(source_cnf.read_text() + f"\n[client]\nuser={admin.user}\npassword={admin.password}\n")
    opts.chmod(0o600)
    started = time.monotonic()
    pipe = (f"mariadb-backup --defaults-file={opts} --backup --stream=xbstream --host={source.host} "
            f"--port={source.port} --target-dir={work / 'data'} --parallel=2 2>{work / 'log'} "
            f"| mbstream -x -C {work / 'data'}")
    if subprocess.run(["bash", "-o", "pipefail", "-c", pipe]).returncode != 0:
        raise SystemExit("raw pipeline failed: " + (work / "log").read_text()[-1500:])
    subprocess.run(["mariadb-backup", "--prepare", f"--target-dir={work / 'data'}", "--use-memory=256M"],
                   check=True, capture_output=True)
    elapsed = time.monotonic() - started
    size = sum(f.stat().st_size for f in (work / "data").rglob("*") if f.is_file())
    shutil.rmtree(work, ignore_errors=True)
    return elapsed, size


def part_one(size_mb: int, runs: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="repman-bench-seed-"))
    bed = Testbed.create(base, count=3)
    try:
        a = bed.addresses
        from repman.bootstrap import BootstrapRequest, bootstrap
        bootstrap(BootstrapRequest(servers=a[:2], admin=bed.admin, replication=bed.replication))
        t = time.monotonic()
        mb = load(a[0], bed.admin, size_mb)
        print(f"dataset: {mb:.0f} MiB of row payload loaded in {time.monotonic() - t:.0f}s", flush=True)
        with session(a[0], bed.admin) as conn:
            purge_binlogs(conn)
        source = a[1]
        from repman.seeding import settle
        settle(source, a[0], bed.admin, 600)
        source_cnf = Path(bed.node(source).base_dir) / "my.cnf"
        raws, ours, totals, size = [], [], [], 0
        for run in range(1, runs + 1):
            order = ("raw", "repman") if run % 2 else ("repman", "raw")
            for which in order:
                os.sync()  # the previous copy's dirty pages must not slow the next one down
                time.sleep(2)
                if which == "raw":
                    secs, size = raw_pipeline(source_cnf, source, bed.admin, base / "raw")
                    raws.append(secs)
                    print(f"run {run}: raw pipe + prepare      {secs:6.1f}s  {size / 2**20 / secs:6.1f} MiB/s "
                          f"({size / 2**20:.0f} MiB extracted)", flush=True)
                else:
                    res = seed_node(SeedRequest(target=a[2], primary=a[0], members=a, admin=bed.admin,
                                                replication=bed.replication, source=source))
                    secs = res.seconds["stream"] + res.seconds["prepare"]
                    ours.append(secs)
                    totals.append(sum(res.seconds.values()))
                    print(f"run {run}: repman stream + prepare {secs:6.1f}s  "
                          f"{res.bytes_copied / 2**20 / res.seconds['stream']:6.1f} MiB/s streamed "
                          f"({res.bytes_copied / 2**20:.0f} MiB); total to replicating {totals[-1]:.1f}s", flush=True)
        raw, ours_s = statistics.median(raws), statistics.median(ours)
        print(f"median over {runs} runs: raw pipe + prepare {raw:.1f}s ({size / 2**20 / raw:.1f} MiB/s), repman "
              f"{ours_s:.1f}s ({size / 2**20 / ours_s:.1f} MiB/s): throughput ratio {raw / ours_s:.2f} "
              f"(goal >= 0.9); repman to a replicating node {statistics.median(totals):.1f}s")
    finally:
        bed.destroy()


def engine(command: str, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "embedded_engine", command, "--stack", "local", "--json"]
    for item in overrides:
        cmd += ["-c", item]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def part_two(size_mb: int) -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]
    admin = Credential(*cfg["repman:db-servers-credential"].split(":", 1))
    with tempfile.TemporaryDirectory(prefix="repman-bench-") as tmp:
        proxy = free_port_block(2)
        overrides = [f"repman:db-servers-base-port={free_port_block(3)}", f"repman:prov-state-dir={tmp}",
                     f"repman:haproxy-write-port={proxy}", f"repman:haproxy-read-port={proxy + 1}",
                     f"repman:api-port={free_port_block(1)}", "repman:prov-keep-data-on-delete=false"]
        try:
            outs = engine("up", overrides + ["repman:prov-service-plan=x2.tiny"])["outputs"]
            primary = ServerAddress.parse(outs["primary_endpoint"])
            mb = load(primary, admin, size_mb)
            with session(primary, admin) as conn:
                purge_binlogs(conn)
            from repman.seeding import settle
            settle(ServerAddress.parse(outs["replica_endpoints"][0]), primary, admin, 600)
            started = time.monotonic()
            outs = engine("up", overrides + ["repman:prov-service-plan=x3.tiny"])["outputs"]
            new = ServerAddress.parse(outs["servers"][-1])
            with session(new, admin) as conn:
                status = query(conn, "SHOW SLAVE STATUS")
            assert status and status[0]["Slave_SQL_Running"] == "Yes", status
            print(f"up x2.tiny -> x3.tiny with {mb:.0f} MiB and purged binlogs: new node replicating after "
                  f"{time.monotonic() - started:.1f}s")
        finally:
            engine("down", overrides)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engine", action="store_true", help="also time up x2 -> x3 through the embedded engine")
    args = parser.parse_args()
    part_one(args.size_mb, args.runs)
    if args.engine:
        part_two(args.size_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time from nothing to a replicating 3-node local cluster, and to teardown.

Runs the local stack's real program through the embedded engine (a fresh
process each time, as a user's command would), on free ports in a temporary
state folder, N times; prints each run and the medians. "Up" ends when a row
written on the primary has been read back from every replica; it includes the
stack's HAProxy and watcher. Usage:

    python bench/provision.py [--runs 5] [--stack local]
"""

from __future__ import annotations

import argparse
import json
import os
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
from testkit.polling import wait_until  # noqa: E402


def engine(command: str, stack: str, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "embedded_engine", command, "--yes", "--stack", stack, "--json"]
    for item in overrides:
        cmd += ["-c", item]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def prove_replicating(outputs: dict, admin: Credential, run: int) -> None:
    """A row written on the primary must be read back from every replica."""
    primary = ServerAddress.parse(outputs["primary_endpoint"])
    with session(primary, admin) as conn:
        execute(conn, "CREATE DATABASE IF NOT EXISTS bench")
        execute(conn, "CREATE TABLE IF NOT EXISTS bench.t (run INT PRIMARY KEY)")
        execute(conn, "INSERT INTO bench.t VALUES (%s)", (run,))
    missing = list(outputs["replica_endpoints"])

    def replicated() -> bool:
        while missing:
            with session(ServerAddress.parse(missing[0]), admin) as conn:
                if not query(conn, "SELECT run FROM bench.t WHERE run=%s", (run,)):
                    return False
            missing.pop(0)
        return True

    try:
        wait_until(replicated, timeout=60, what=f"run {run} on every replica", every=0.02)
    except AssertionError:
        raise SystemExit(f"{missing[0]} did not replicate") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", default="local")
    args = parser.parse_args()
    from components.pulumi_config import load_stack_config

    # The committed stacks' secure values open with the README's example passphrase.
    if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        os.environ["PULUMI_CONFIG_PASSPHRASE"] = "repman-example"
    cfg = load_stack_config(ROOT, args.stack)
    admin = Credential(*cfg["repman:db-servers-credential"].split(":", 1))
    ups, downs = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="repman-bench-") as tmp:
            proxy = free_port_block(2)
            overrides = [f"repman:db-servers-base-port={free_port_block(3)}", f"repman:prov-state-dir={tmp}",
                         "repman:prov-keep-data-on-delete=false", f"repman:haproxy-write-port={proxy}",
                         f"repman:haproxy-read-port={proxy + 1}", f"repman:api-port={free_port_block(1)}"]
            t0 = time.monotonic()
            try:
                result = engine("up", args.stack, overrides)
                prove_replicating(result["outputs"], admin, run)
                t1 = time.monotonic()
            finally:
                t2 = time.monotonic()
                engine("down", args.stack, overrides)
                t3 = time.monotonic()
        ups.append(t1 - t0)
        downs.append(t3 - t2)
        print(f"run {run}: up to replicating {ups[-1]:.2f}s, teardown {downs[-1]:.2f}s", flush=True)
    print(f"median over {args.runs} runs: up to replicating {statistics.median(ups):.2f}s "
          f"(min {min(ups):.2f}s, max {max(ups):.2f}s); teardown {statistics.median(downs):.2f}s "
          f"(min {min(downs):.2f}s, max {max(downs):.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

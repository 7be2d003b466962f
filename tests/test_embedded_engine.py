"""The embedded engine as a user drives it: preview, confirmation, refresh, protect, pending
operations, and no credential in any daemon's environment, log, config or state.

The real program of stacks/Pulumi.local.yaml on free ports (real mariadbd, haproxy, watcher).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repman.local.mariadb import pid_alive
from testkit.deployment import check_deployment
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
CMD = [sys.executable, "-m", "embedded_engine"]


def run(*args: str, overrides: list[str], stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    cmd = [*CMD, *args, "--stack", "local"]
    for item in overrides:
        cmd += ["-c", item]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=stdin)


def ok(*args: str, overrides: list[str]) -> subprocess.CompletedProcess:
    done = run(*args, overrides=overrides)
    assert done.returncode == 0, f"{args} failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def daemon_pids(state_dir: Path) -> dict[str, int]:
    out = {}
    for pid_file in state_dir.glob("**/*.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if pid_alive(pid):
            out[str(pid_file.relative_to(state_dir))] = pid
    return out


def passwords() -> list[str]:
    from components.pulumi_config import load_stack_config  # secure values decrypted (example passphrase)

    cfg = load_stack_config(ROOT, "local")
    return [str(cfg[k]).split(":", 1)[1] for k in ("repman:db-servers-credential", "repman:replication-credential",
                                               "repman:monitoring-credential")]


def test_preview_confirm_apply_refresh_protect(local_stack):
    overrides, state_dir = local_stack
    state_file = state_dir / "embedded-engine.local.json"

    # Preview on an empty stack: the whole plan, nothing made.
    first = ok("preview", "--json", overrides=overrides)
    plan = json.loads(first.stdout)["plan"]
    assert sum(line.startswith("+ ") for line in plan) == 11 and len(plan) == 11
    assert not state_dir.exists()

    # up without a terminal and without --yes shows the plan, then refuses in one line; nothing made.
    refused = run("up", overrides=overrides)
    assert refused.returncode != 0 and "Plan:" in refused.stdout
    assert refused.stderr.strip().splitlines() == [
        "error: --yes must be passed to apply when not running interactively "
        "(the plan above is what would be applied)"]
    assert not state_dir.exists()

    # A crash mid-create (the engine killed -9) is recorded as a pending operation, not forgotten.
    def bootstrap_pending() -> bool:
        pending = json.loads(state_file.read_text()).get("pending_operations", [])
        return any(p["name"] == "cluster1-bootstrap" for p in pending)

    proc = subprocess.Popen([*CMD, "up", "--yes", "--stack", "local", *sum((["-c", o] for o in overrides), [])],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Until the engine exits or records the bootstrap as pending (it may not have written state yet).
        wait_until(lambda: proc.poll() is not None or bootstrap_pending(), timeout=120,
                   what="the bootstrap to be pending", every=0.005, ignore=(OSError, ValueError))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)      # the engine and its children; daemons have their own session
        proc.wait()
    status = json.loads(ok("status", "--json", overrides=overrides).stdout)
    assert status["pending_operations"] and status["pending_operations"][0]["operation"] == "creating"
    assert "was interrupted" in ok("preview", overrides=overrides).stdout

    # up --yes applies exactly the previewed plan, and finishes what the crash left half-made.
    planned = json.loads(ok("preview", "--json", overrides=overrides).stdout)["plan"]
    applied = json.loads(ok("up", "--yes", "--json", overrides=overrides).stdout)
    assert applied["plan"] == planned
    assert json.loads(ok("status", "--json", overrides=overrides).stdout)["pending_operations"] == []
    urns = [r["urn"] for r in json.loads(state_file.read_text())["resources"]]
    assert any("repman:cluster:Cluster$repman:database:DatabaseService$pulumi-python:dynamic/repman:LocalNode::"
               in u for u in urns)                                    # the whole parent chain, as the engine

    # Preview with a changed plan: the plan, and the same processes and state-file bytes.
    pids, before = daemon_pids(state_dir), digest(state_file)
    tags = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]["repman:prov-db-tags"]
    changed = overrides + ["repman:prov-db-tags=" + json.dumps(tags + ["slow"])]
    shown = ok("preview", "--diff", overrides=changed).stdout
    assert shown.count("LocalNode  (tags)") == 3 and '=> ["' in shown and "3 to update" in shown
    drift = run("preview", "--expect-no-changes", overrides=changed)
    assert drift.returncode == 3 and "--expect-no-changes" in drift.stderr
    assert daemon_pids(state_dir) == pids and digest(state_file) == before
    planned = json.loads(ok("preview", "--json", overrides=changed).stdout)["plan"]
    applied = json.loads(ok("up", "--yes", "--json", overrides=changed).stdout)
    assert applied["plan"] == planned and applied["changes"]["updated"] == 3
    assert ok("preview", "--expect-no-changes", overrides=changed).returncode == 0

    # No credential in any daemon's environment, the state file, logs or rendered configs.
    scan_for_credentials(state_dir)
    # The state as a Pulumi deployment for `pulumi stack import`: consistent, and no password in it.
    exported = ok("export", overrides=changed).stdout
    resources = check_deployment(json.loads(exported))
    assert sum(r["type"].endswith("repman:LocalNode") for r in resources.values()) == 3
    assert not any(p in exported for p in passwords())

    # Drift: a dead watcher and a hand-edited my.cnf. diff is pure (no change without a refresh);
    # preview --refresh shows them without writing state; refresh records; up --yes repairs.
    watcher = daemon_pids(state_dir)["cluster1/watcher/watcher.pid"]
    os.kill(watcher, signal.SIGKILL)
    cnf = next(state_dir.glob("cluster1/db2/my.cnf"))
    cnf.write_text(cnf.read_text() + "\n# edited by hand\n")
    while pid_alive(watcher):
        time.sleep(0.02)
    before = digest(state_file)
    assert "no changes" in ok("preview", overrides=changed).stdout
    seen = ok("preview", "--refresh", overrides=changed).stdout
    assert "cluster1-watcher" in seen and "cluster1-db2-process" in seen and digest(state_file) == before
    ok("refresh", overrides=changed)
    assert digest(state_file) != before
    assert "2 to update" in ok("preview", overrides=changed).stdout
    ok("up", "--yes", overrides=changed)
    assert "# edited by hand" not in cnf.read_text()
    assert "cluster1/watcher/watcher.pid" in daemon_pids(state_dir)

    # Protected nodes: the engine refuses to delete them, in one line, and deletes nothing.
    ok("up", "--yes", overrides=changed + ["repman:prov-protect=true"])
    pids = daemon_pids(state_dir)
    refused = run("down", overrides=changed)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "error: refusing to delete protected resource cluster1-db")
    assert daemon_pids(state_dir) == pids
    moved = run("preview", overrides=changed + ["repman:prov-protect=true", "repman:cluster-name=other"])
    assert moved.returncode == 1 and "protected resource" in moved.stderr
    ok("up", "--yes", overrides=changed)                                   # unprotect, then down works
    assert "deleted" in ok("down", overrides=changed).stdout
    assert daemon_pids(state_dir) == {}


def scan_for_credentials(state_dir: Path) -> None:
    secrets = passwords()
    found: list[str] = []
    pids = daemon_pids(state_dir)
    assert len(pids) >= 5, pids                     # 3 mariadbd, haproxy, watcher
    for name, pid in pids.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert "PULUMI_CONFIG" not in environ, name
        found += [f"/proc/{pid}/environ ({name})" for s in secrets if s in environ]
    for path in state_dir.rglob("*"):
        if not path.is_file() or path.parent.name == "secrets":
            continue                                # the watcher's 0600 secret files are where they belong
        rel = str(path.relative_to(state_dir))
        if "/data/" in rel and "-bin." not in rel and not path.name.startswith("binlog."):
            continue                                # table files (and master.info, the server's own
                                                    # credential store); binlogs and relay logs are scanned
        data = path.read_bytes()
        found += [rel for s in secrets if s.encode() in data]
    assert found == [], f"credentials in plain text: {sorted(set(found))}"
    for secret_file in state_dir.glob("**/secrets/*"):
        assert secret_file.stat().st_mode & 0o777 == 0o600

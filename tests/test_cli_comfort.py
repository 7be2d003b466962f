"""CLI comfort on a real 3-node mariadbd cluster: colour only on a terminal (and never with NO_COLOR),
`status --watch`, progress with timings, `--json` on the commands a script reads, `events --follow`."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repman.watcher.state_store import StateStore
from testkit.watcherbed import cluster_section, master_of, wait_until, write_config

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b["


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def repman(*args: str, **env: str) -> subprocess.CompletedProcess:
    """This checkout's `repman` with its output into pipes (the shared virtualenv's script may be another's)."""
    return subprocess.run([sys.executable, "-m", "repman.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=_env(**env))


def on_terminal(args: list[str], seconds: float, interrupt: bool = False, **env: str) -> tuple[int, str]:
    """Run `repman` with stdout and stderr on a pseudo-terminal for ``seconds`` (then Ctrl-C when
    ``interrupt``); returns (exit status, everything it wrote)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "repman.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, cwd=ROOT, env=_env(**env))
    os.close(follower)
    out = bytearray()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends and proc.poll() is None:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                out += os.read(leader, 65536)
            except OSError:
                break
    if interrupt and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return code, out.decode(errors="replace")


@pytest.fixture
def bed(seeded_bed):
    return seeded_bed


def test_colour_status_watch_json_and_progress(bed, tmp_path):
    master, r1, r2 = bed.addresses
    cfg = str(write_config(tmp_path / "repman.yaml", {"c1": cluster_section(bed, tmp_path / "state")}))

    # colour on a terminal, none into a pipe, none with NO_COLOR
    code, text = on_terminal(["--config", cfg, "status"], 30)
    assert code == 0 and f"{ESC}32mMaster" in text, text
    piped = repman("--config", cfg, "status")
    assert piped.returncode == 0 and ESC not in piped.stdout and "Master" in piped.stdout
    code, text = on_terminal(["--config", cfg, "status"], 30, NO_COLOR="1")
    assert code == 0 and ESC not in text and "Master" in text

    # --watch: frames until Ctrl-C, the screen cleared on a terminal only; exit 0
    code, text = on_terminal(["--config", cfg, "status", "--watch", "0.5"], 4, interrupt=True)
    assert code == 0, text
    assert text.count("\x1b[H\x1b[2J") >= 2 and text.count(f"cluster c1: master {master}") >= 2
    assert "Traceback" not in text
    proc = subprocess.Popen([sys.executable, "-m", "repman.cli", "--config", cfg, "status", "--watch", "0.5",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=_env())
    lines = [proc.stdout.readline() for _ in range(2)]     # type: ignore[union-attr]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    docs = [json.loads(line) for line in lines]
    assert all(d["master"] == master.url for d in docs) and ESC not in "".join(lines)
    bad = repman("--config", cfg, "status", "--watch", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "repman: --watch: 0 is not a positive number of seconds"

    # --json where a script reads
    p = repman("--config", cfg, "maintenance", "on", r2.url, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["maintenance"] is True, p.stderr
    assert json.loads(repman("--config", cfg, "maintenance", "off", r2.url, "--json").stdout)["server"] == r2.url
    p = repman("--config", cfg, "reset-failover-counter", "--json")
    assert json.loads(p.stdout) == {"cluster": "c1", "failover_count": 0, "was": 0}
    p = repman("--config", cfg, "config", "check", "--json")
    doc = json.loads(p.stdout)
    assert doc["valid"] is True and doc["clusters"][0]["servers"] == [a.url for a in bed.addresses]

    # progress: each step as it completes with its time on a terminal; the result's timings in --json
    code, text = on_terminal(["--config", cfg, "switchover", "--to", r1.url], 120)
    assert code == 0, text
    assert master_of(bed) == r1
    stamps = re.findall(r"\[\s*(\d+\.\d\d)s\]", text)
    assert len(stamps) >= 3 and [float(s) for s in stamps] == sorted(float(s) for s in stamps), text
    p = repman("--config", cfg, "switchover", "--to", master.url, "--json")
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["ok"] is True and result["timings"] and ESC not in p.stdout
    assert p.stderr == ""                                   # no progress into a pipe without -v
    # both command-line switchovers are in the event history, with the shell's user
    ops = [e for e in StateStore(tmp_path / "state" / "c1").load().events if e["kind"] == "operation"]
    assert len(ops) == 2 and all(e["details"]["by"].endswith("(cli)") and e["details"]["ok"] for e in ops)
    assert ops[-1]["details"]["new_primary"] == master.url


def test_events_follow_prints_new_events_until_ctrl_c(bed, tmp_path):
    _, r1, _ = bed.addresses
    cfg = str(write_config(tmp_path / "repman.yaml", {"c1": cluster_section(bed, tmp_path / "state")}))
    proc = subprocess.Popen([sys.executable, "-m", "repman.cli", "--config", cfg, "events", "--follow", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        time.sleep(1.5)                                     # it has read the (empty) history
        assert repman("--config", cfg, "switchover", "--to", r1.url).returncode == 0
        line = proc.stdout.readline()                       # type: ignore[union-attr]
        event = json.loads(line)
        assert event["kind"] == "operation" and event["details"]["new_primary"] == r1.url
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
    wait_until(lambda: master_of(bed) == r1, 10, "the new master")

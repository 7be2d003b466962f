"""bench/peers.py runs end to end with one round of each fault, MHA and repman on one real cluster.

It proves the harness works here (private sshd, MHA's Perl overlay for MariaDB, MHA's
switchover and failover, the way back to GTID replication) and that neither tool lost
or invented an acknowledged write: the script exits non-zero otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.env import needs_mariadb

ROOT = Path(__file__).resolve().parent.parent
MHA = all(shutil.which(t) for t in ("masterha_manager", "masterha_master_switch", "save_binary_logs"))

pytestmark = [
    needs_mariadb, pytest.mark.slow,
    pytest.mark.skipif(not MHA, reason="MHA (mha4mysql-manager / mha4mysql-node) not installed"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="openssh-server not installed"),
]


def test_mha_overlay_fixes_the_two_mariadb_checks():
    probe = ("print MHA::NodeUtil::mysql_version_ge('10.11.6-MariaDB-0+deb12u1-log', '5.6.0'), ' ', "
             "MHA::NodeUtil::parse_mysql_major_version('10.11.6-MariaDB-log'), ' ', "
             "join(',', MHA::SlaveUtil::check_if_super_read_only('h', '127.0.0.1', 1, 'u', 'p'))")
    done = subprocess.run(["perl", f"-I{ROOT / 'bench' / 'mha'}", "-MMHAMariaDBOverlay", "-e", probe],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 010011 0,0"
    # Without the overlay MHA's own parser dies on the same string (the fix is needed).
    bare = subprocess.run(["perl", "-MMHA::NodeUtil", "-e",
                           "use warnings FATAL => 'all'; "
                           "MHA::NodeUtil::parse_mysql_version('10.11.6-MariaDB-0+deb12u1-log')"],
                          capture_output=True, text=True, timeout=30)
    assert bare.returncode != 0 and "Redundant argument" in bare.stderr


def test_peers_bench_runs_end_to_end_with_one_round():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--switchovers", "1",
                           "--failovers", "1", "--lagging", "1"],
                          capture_output=True, text=True, timeout=540, cwd=str(ROOT))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    for label in ("switchover unavailability p50", "kill -9 -> first write p50", "lagging replicas"):
        line = next(l for l in out.splitlines() if label in l)
        assert line.rstrip().endswith("x"), line          # both figures and their ratio printed
    for phase in ("mha-switch", "repman-switch", "mha-fail", "repman-fail", "mha-lag", "repman-lag"):
        line = next(l for l in out.splitlines() if l.strip().startswith(phase))
        assert "lost 0   unexpected 0   errant GTIDs 0" in line, line
    lag = [l for l in out.splitlines() if "acknowledged on the dead master only" in l]
    assert len(lag) == 2
    for line in lag:                                     # the lagging case really lagged, all recovered
        only = int(line.split("dead master only: ")[1].split(",")[0])
        assert only > 0 and line.rstrip().endswith(f"recovered {only}"), line

"""Fencing an old master that does not answer, and the nemesis checker's split-brain windows.

The fence actions run against real processes (a ``sleep`` stands for mariadbd:
what is tested is the kill through the pid file the local backend renders, and
the script's arguments); the split-brain check is pure arithmetic on a timeline.
"""

from __future__ import annotations

import subprocess
import time

from repman.db import ServerAddress
from repman.lab.checker import split_brain_windows
from repman.lab.writer import Ack
from repman.watcher.config import parse_config
from repman.watcher.fencing import fence_old_master, fence_outside, pid_file_for, ssh_kill_command

DEAD = ServerAddress("127.0.0.1", 1)       # nothing listens on port 1


def _cfg(tmp_path, **keys):
    section = {"db-servers-hosts": [DEAD.url, "127.0.0.1:2"], "db-servers-credential": "u:p",
               "replication-credential": "r:p", "monitoring-datadir": str(tmp_path / "state")}
    section.update({k.replace("_", "-"): v for k, v in keys.items()})
    return parse_config({"clusters": {"c1": section}}).cluster()


def test_unreachable_old_master_is_killed_through_its_pid_file(tmp_path):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = tmp_path / "mariadbd.pid"
        pid_file.write_text(f"{proc.pid}\n")
        cfg = _cfg(tmp_path, failover_fence_pid_files=[f"{DEAD.url}={pid_file}", "127.0.0.1:2=/nonexistent"])
        assert pid_file_for(cfg, DEAD) == pid_file
        said: list[str] = []
        thread = fence_old_master(cfg, DEAD, said.append)     # SQL fails (refused), then the pid file
        thread.join(5)
        assert proc.wait(5) == -9
        assert said == [f"fenced {DEAD.url}: killed its process {proc.pid} (pid file {pid_file})"]
    finally:
        proc.kill()


def test_fence_script_gets_host_and_port_and_is_bounded(tmp_path):
    out = tmp_path / "args"
    script = tmp_path / "fence.sh"
    script.write_text(f"#!/bin/sh\necho \"$1 $2\" > {out}\necho powered off\n")
    script.chmod(0o755)
    cfg = _cfg(tmp_path, failover_fence_script=str(script))
    assert fence_outside(cfg, DEAD, 2.0) == f"failover-fence-script fenced {DEAD.url} (exit 0) powered off"
    assert out.read_text() == "127.0.0.1 1\n"
    script.write_text("#!/bin/sh\nsleep 10\n")
    started = time.monotonic()
    assert "failed" in fence_outside(cfg, DEAD, 0.3)
    assert time.monotonic() - started < 3


def test_without_a_fence_action_the_failover_is_told_so(tmp_path):
    said = fence_outside(_cfg(tmp_path), DEAD, 1.0)
    assert said == (f"{DEAD.url} does not answer and no fence action is configured "
                    "(failover-fence-pid-files, failover-fence-script): relying on semi-sync without fallback")


def _acks(*rows: tuple) -> list[Ack]:
    return [Ack(i, row[0], row[1], row[2] if len(row) > 2 else row[0] - 0.001) for i, row in enumerate(rows)]


def test_split_brain_is_a_write_sent_to_the_old_master_after_the_new_one_acknowledged():
    clean = _acks((1.0, "a"), (2.0, "a"), (5.0, "b"), (6.0, "b"))
    assert split_brain_windows(clean, [1.5]) == []
    # Sent at 5.5, after b's first acknowledgement at 5.0, acknowledged by a: two masters.
    late = _acks((1.0, "a"), (2.0, "a"), (5.0, "b"), (6.0, "a", 5.5), (7.0, "b"))
    [window] = split_brain_windows(late, [1.5])
    assert (window.first, window.second, window.start, window.end) == ("b", "a", 5.0, 5.5)
    # Sent before the fault, acknowledged late by a resumed master: not a split brain by itself
    # (it may have committed and replicated before the freeze; the lost check decides).
    assert split_brain_windows(_acks((1.0, "a"), (5.0, "b"), (6.0, "a", 1.2)), [1.1]) == []
    # The same with nothing else from "a" in the round: the late ack does not make "a" the newer
    # master, so "b"'s later writes are no split brain either.
    assert split_brain_windows(_acks((1.0, "a"), (5.0, "b"), (6.0, "a", 1.05), (7.0, "b")), [1.1]) == []
    # Back to "a" in a later round (a second failover) is no split brain.
    assert split_brain_windows(_acks((1.0, "a"), (5.0, "b"), (9.0, "a")), [3.0, 7.0]) == []


def test_bad_fence_settings_are_one_line_errors_naming_the_key(tmp_path):
    import pytest

    from repman.errors import ConfigError

    with pytest.raises(ConfigError, match=r"clusters\.c1\.failover-fence-pid-files: '127\.0\.0\.9:5=/x' is not "
                                          r"host:port=/path/to/pid-file of a db-servers-hosts server"):
        _cfg(tmp_path, failover_fence_pid_files=["127.0.0.9:5=/x"])
    with pytest.raises(ConfigError, match=r"failover-fence-pid-files: '127\.0\.0\.1:1' is not"):
        _cfg(tmp_path, failover_fence_pid_files=["127.0.0.1:1"])
    with pytest.raises(ConfigError, match=r"clusters\.c1\.failover-fence-script: '/nonexistent' is not a file"):
        _cfg(tmp_path, failover_fence_script="/nonexistent")


def test_the_ssh_fence_kills_through_sudo_when_not_root_and_quotes_the_path(tmp_path):
    from pathlib import Path

    cfg = _cfg(tmp_path, failover_fence_ssh_user="deploy", failover_fence_ssh_options="-p 2222")
    command = ssh_kill_command(cfg, ServerAddress("10.0.0.3", 3306), Path("/srv/db 1/run/mariadbd.pid"), 3)
    assert command[:2] == ["ssh", "-o"] and "BatchMode=yes" in command and "ConnectTimeout=3" in command
    assert command[-4:-2] == ["-p", "2222"] and command[-2] == "deploy@10.0.0.3"
    import shlex
    inner = shlex.split(command[-1])
    assert inner[:3] == ["sudo", "-n", "sh"] and inner[-1] == "kill -9 \"$(cat '/srv/db 1/run/mariadbd.pid')\""
    root = _cfg(tmp_path, failover_fence_ssh_user="root")
    assert ssh_kill_command(root, DEAD, Path("/x.pid"), 3)[-1] == 'kill -9 "$(cat /x.pid)"'

"""The SSH backend's fence: a frozen old master on a live host is killed over SSH.

A real mariadbd is frozen with SIGSTOP (a stalled disk, a hung process: the host still
answers SSH, the server answers nothing), and a private sshd on 127.0.0.1 stands for its
host. The fence must first give up on SQL within its bound, then kill the process
through the pid file on that host, with the key and options the backend renders.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from repman.watcher.fencing import fence_old_master
from testkit.env import needs_mariadb
from testkit.polling import wait_until
from testkit.sshd import HAVE_SSHD, LocalSshd

pytestmark = [needs_mariadb, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_SSHD or shutil.which("ssh") is None,
                                 reason="openssh-server / ssh client not installed")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_frozen_old_master_is_killed_over_ssh_through_its_pid_file(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    master = c.primary()
    pid_file = c.bed.node(master).paths.pid_file
    pid = int(pid_file.read_text().strip())
    sshd = LocalSshd.start(tmp_path / "ssh")
    try:
        c.set(failover_fence_pid_files=[f"{master.url}={pid_file}"], failover_fence_ssh_user="root",
              failover_fence_ssh_options=f"-p {sshd.port} -i {sshd.key} -o StrictHostKeyChecking=no "
                                         "-o UserKnownHostsFile=/dev/null",
              failover_fence_timeout=5)
        os.kill(pid, signal.SIGSTOP)
        said: list[str] = []
        fence_old_master(c.cfg, master, said.append).join(10)
        assert said == [f"fenced {master.url}: killed its process over SSH on {master.host} (pid file {pid_file})"]
        wait_until(lambda: not _alive(pid), 10, "the frozen mariadbd to be gone")
        assert "Accepted publickey for root" in (sshd.folder / "sshd.log").read_text()
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        sshd.close()


def test_a_refused_ssh_login_is_reported_and_bounded(cluster_factory, tmp_path):
    c = cluster_factory(count=2)
    master = c.primary()
    pid_file = c.bed.node(master).paths.pid_file
    c.set(failover_fence_pid_files=[f"{master.url}={pid_file}"], failover_fence_ssh_user="root",
          failover_fence_ssh_options="-p 1 -o StrictHostKeyChecking=no", failover_fence_timeout=3)
    said: list[str] = []
    fence_old_master(c.cfg, master, said.append, answered=False).join(10)
    assert len(said) == 1 and said[0].startswith(f"fence of {master.url} over SSH failed:"), said
    assert _alive(int(pid_file.read_text().strip()))          # nothing was killed


"""Fencing a master that is being replaced, before the promotion, within a bound.

Reachable: its client connections are killed first (a commit waiting for a
semi-sync acknowledgement is interrupted, so its client gets an error, never an
acknowledgement; ``read_only`` alone would wait behind that commit), then
``read_only`` is set and the clients that slipped in are killed again.
Unreachable (frozen, cut off): a fence action outside SQL, bounded by
``failover-fence-timeout``: the local backend's pid file (kill -9 of the
process), the same pid file on the server's own host over SSH when
``failover-fence-ssh-user`` is set (the SSH backend renders both: a frozen
mariadbd on a live host dies, its supervisor restarts it read-only), else
``failover-fence-kube-pods`` deletes its pod through the Kubernetes API, else
``failover-fence-script host port`` (a power switch, a cloud API).
Every step runs with short timeouts: the failover never waits on the old master
beyond the bound.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable

import pymysql

from repman.db import ServerAddress, connect, execute
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server
from repman.watcher.freeze import kill_clients


def pid_file_for(cfg: ClusterConfig, address: ServerAddress) -> Path | None:
    """The pid file ``failover-fence-pid-files`` names for ``address`` (``host:port=/path``)."""
    for entry in cfg.strings("failover-fence-pid-files"):
        hostport, _, path = str(entry).partition("=")
        try:
            if path and same_server(ServerAddress.parse(hostport.strip()), address):
                return Path(path.strip())
        except Exception:  # noqa: BLE001 - validated at load; a bad entry fences nothing
            continue
    return None


def fence_sql(cfg: ClusterConfig, address: ServerAddress, timeout: float) -> str:
    """Kill clients, read_only, kill again; raises pymysql errors when the server does not answer."""
    # A frozen server completes the TCP handshake (the kernel does) and never sends its
    # greeting: one second tells, whatever failover-fence-timeout allows the whole fence.
    with connect(address, cfg.admin, timeout=min(1.0, timeout), read_timeout=min(1.0, timeout)) as conn:
        first = kill_clients(conn)
        execute(conn, "SET GLOBAL read_only = ON")
        again = kill_clients(conn)
    return f"fenced {address.url} before the promotion: read_only, {len(first) + len(again)} client thread(s) killed"


def fence_outside(cfg: ClusterConfig, address: ServerAddress, timeout: float) -> str:
    """The fence action for a server that does not answer SQL."""
    if cfg.flag("failover-fence-kube-pods"):
        return _delete_pod(cfg, address, timeout)
    pid_file = pid_file_for(cfg, address)
    if pid_file is not None and cfg.text("failover-fence-ssh-user"):
        return _kill_over_ssh(cfg, address, pid_file, timeout)
    if pid_file is not None:
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGKILL)
            return f"fenced {address.url}: killed its process {pid} (pid file {pid_file})"
        except (OSError, ValueError) as exc:
            return f"fence of {address.url} by pid file {pid_file} did nothing: {exc}"
    script = cfg.text("failover-fence-script")
    if script:
        try:
            done = subprocess.run([script, address.host, str(address.port)], capture_output=True, text=True,
                                  timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"failover-fence-script for {address.url} failed: {exc}"
        tail = (done.stdout or done.stderr).strip().splitlines()[-1:] or [""]
        return f"failover-fence-script fenced {address.url} (exit {done.returncode}) {tail[0]}".strip()
    return (f"{address.url} does not answer and no fence action is configured "
            "(failover-fence-pid-files, failover-fence-script): relying on semi-sync without fallback")


def ssh_kill_command(cfg: ClusterConfig, address: ServerAddress, pid_file: Path, timeout: float) -> list[str]:
    """ssh to the server's host and kill -9 the pid its pid file names (sudo -n when not root)."""
    user = cfg.text("failover-fence-ssh-user")
    kill = f'kill -9 "$(cat {shlex.quote(str(pid_file))})"'
    remote = kill if user == "root" else f"sudo -n sh -c {shlex.quote(kill)}"
    return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}",
            *shlex.split(cfg.text("failover-fence-ssh-options")), f"{user}@{address.host}", remote]


def _kill_over_ssh(cfg: ClusterConfig, address: ServerAddress, pid_file: Path, timeout: float) -> str:
    command = ssh_kill_command(cfg, address, pid_file, timeout)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"fence of {address.url} over SSH failed: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return f"fence of {address.url} over SSH failed: {tail[0]}"
    return f"fenced {address.url}: killed its process over SSH on {address.host} (pid file {pid_file})"


def _delete_pod(cfg: ClusterConfig, address: ServerAddress, timeout: float) -> str:
    from repman.routing.kube import KubeApi, KubeApiError, KubeNames

    try:
        api = KubeApi.in_cluster()
        pod = KubeNames(cfg.name, api.namespace).pod_of_host(address.host)
        if pod is None:
            return f"fence of {address.url}: not a pod of cluster {cfg.name}; nothing deleted"
        api.timeout = timeout
        api.delete_pod(pod)
    except KubeApiError as exc:
        return f"fence of {address.url} through the Kubernetes API failed: {exc}"
    return f"fenced {address.url}: deleted its pod {pod} (grace period 0)"


def fence_old_master(cfg: ClusterConfig, address: ServerAddress, say: Callable[[str], None],
                     answered: bool = True) -> threading.Thread:
    """Start fencing in a thread; the caller joins it with ``failover-fence-timeout`` before promoting.

    ``answered=False`` (the failover's read just timed out on it) goes straight to the fence
    action: a second SQL attempt would cost the same timeout again.
    """
    timeout = cfg.seconds("failover-fence-timeout")

    def run() -> None:
        try:
            if not answered:
                raise pymysql.err.OperationalError(2013, "did not answer the failover's read")
            say(fence_sql(cfg, address, timeout))
        except pymysql.MySQLError:
            say(fence_outside(cfg, address, timeout))
        except Exception as exc:  # noqa: BLE001 - a fence bug must not stop the failover
            say(f"fencing {address.url} failed: {exc}")

    thread = threading.Thread(target=run, name=f"fence-{address.url}", daemon=True)
    thread.start()
    return thread

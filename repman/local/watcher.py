"""The watcher (``repman --config FILE watch``) as a detached local process.

The local backend starts it next to the nodes so a cluster deployed with one
command is also watched; a pid file lets the next deployment find it, restart it
when it died, and stop it on teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from repman.errors import RepmanError
from repman.local.daemon_env import daemon_environment
from repman.local.mariadb import pid_alive


class WatcherProcessError(RepmanError):
    """The watcher could not be started."""


@dataclass(frozen=True)
class WatcherFiles:
    base: Path

    @property
    def config(self) -> Path:
        return self.base / "repman.yaml"

    @property
    def secrets_dir(self) -> Path:
        return self.base / "secrets"

    @property
    def state_dir(self) -> Path:
        return self.base / "state"

    @property
    def pid_file(self) -> Path:
        return self.base / "watcher.pid"

    @property
    def log(self) -> Path:
        return self.base / "watcher.log"


def command(files: WatcherFiles) -> list[str]:
    return [sys.executable, "-m", "repman.cli", "--config", str(files.config), "watch"]


def running_pid(files: WatcherFiles) -> int | None:
    """The pid of our watcher, if alive (the command line must name our config: no pid reuse)."""
    try:
        pid = int(files.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(files.config).encode() in cmdline else None


def _log_tail(files: WatcherFiles, lines: int = 1) -> str:
    try:
        text = [l for l in files.log.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def start_watcher(files: WatcherFiles, api: tuple[str, int] | None = None, settle: float = 1.0,
                  timeout: float = 30.0) -> int:
    """Start detached; wait until it survived ``settle`` seconds (and its API answers, if any)."""
    pid = running_pid(files)
    if pid:
        return pid
    files.base.mkdir(parents=True, exist_ok=True)
    log = open(files.log, "ab")
    env = daemon_environment({"PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(command(files), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, close_fds=True, cwd=str(files.base), env=env)
    log.close()
    files.pid_file.write_text(f"{proc.pid}\n")
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise WatcherProcessError(f"watcher exited with {proc.returncode}: {_log_tail(files)}")
        elapsed = time.monotonic() - started
        api_ready = api is None or _port_open(*api)
        if elapsed >= settle and api_ready:
            return proc.pid
        if elapsed > timeout:
            stop_watcher(files)
            raise WatcherProcessError(f"watcher API did not answer on {api[0]}:{api[1]} in {timeout:.0f}s: "
                                      f"{_log_tail(files)}" if api else "watcher did not settle")
        time.sleep(0.05)


def stop_watcher(files: WatcherFiles, timeout: float = 20.0) -> bool:
    """SIGTERM (the watcher stops its loops), then SIGKILL after ``timeout``."""
    pid = running_pid(files)
    if pid is None:
        files.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    files.pid_file.unlink(missing_ok=True)
    return True

"""Run real mariadbd processes on this host, detached so they outlive the caller.

Used by the local backend's dynamic provider, by the test harness and by the
benchmarks. Every server has its own directory holding ``my.cnf``, ``data/``,
``run/`` (pid, error log, socket) and ``tmp/``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from repman.errors import RepmanError
from repman.local.daemon_env import daemon_environment

INSTALL_DB = "mariadb-install-db"
SERVER = "mariadbd"


class LocalServerError(RepmanError):
    """A local mariadbd could not be initialised, started or stopped."""


@dataclass(frozen=True)
class LocalServerPaths:
    """The on-disk layout of one local server."""

    base: Path

    @property
    def cnf(self) -> Path:
        return self.base / "my.cnf"

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    @property
    def tmp_dir(self) -> Path:
        return self.base / "tmp"

    @property
    def socket(self) -> Path:
        return self.run_dir / "mariadbd.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "mariadbd.pid"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "error.log"

    def make_dirs(self) -> None:
        for d in (self.base, self.run_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)


def initialise_datadir(paths: LocalServerPaths) -> None:
    """Create the system tables; refuses to touch a datadir that already has them."""
    if (paths.datadir / "mysql").is_dir():
        return
    paths.datadir.mkdir(parents=True, exist_ok=True)
    cmd = [
        INSTALL_DB, f"--defaults-file={paths.cnf}", f"--datadir={paths.datadir}",
        "--auth-root-authentication-method=normal", "--skip-test-db",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LocalServerError(f"{INSTALL_DB} failed for {paths.datadir}: {tail[0]}")


def read_pid(paths: LocalServerPaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _socket_open(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(str(path)) == 0


def start_server(paths: LocalServerPaths, host: str, port: int, timeout: float = 60.0) -> int:
    """Start mariadbd detached (own session) and wait until it accepts TCP connections."""
    running = read_pid(paths)
    if running:
        return running
    paths.make_dirs()
    log = open(paths.run_dir / "stdout.log", "ab")
    proc = subprocess.Popen(
        [SERVER, f"--defaults-file={paths.cnf}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        start_new_session=True, close_fds=True, env=daemon_environment(),
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServerError(
                f"{SERVER} for {paths.base} exited with {proc.returncode}: {last_error_line(paths)}"
            )
        # Our own unix socket first: the TCP port alone could be another process's.
        if _socket_open(paths.socket) and _port_open(host, port):
            return proc.pid
        time.sleep(0.05)
    raise LocalServerError(f"{SERVER} for {paths.base} did not answer on {host}:{port} in {timeout:.0f}s")


def last_error_line(paths: LocalServerPaths) -> str:
    try:
        lines = [l for l in paths.error_log.read_text(errors="replace").splitlines()
                 if "[ERROR]" in l and not l.rstrip().endswith("Aborting")]
    except OSError:
        return "no error log"
    return lines[-1] if lines else "no [ERROR] line in the error log"


def stop_server(paths: LocalServerPaths, timeout: float = 60.0) -> bool:
    """Clean shutdown (SIGTERM, wait). Returns False when it was not running."""
    pid = read_pid(paths)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def kill_server(paths: LocalServerPaths) -> int | None:
    """kill -9, as a crash would; returns the pid killed."""
    pid = read_pid(paths)
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid

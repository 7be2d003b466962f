"""A detached local HAProxy process: start, seamless reload, stop (local backend and tests).

Reload hands the listening sockets over (``-x`` on the admin socket, ``-sf`` to the
old process) after saving the runtime server state, so the watcher's routing survives
and established connections finish on the old process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from repman.errors import RepmanError
from repman.local.daemon_env import daemon_environment
from repman.local.mariadb import pid_alive  # one liveness check for every local process
from repman.routing.haproxy_runtime import RuntimeAPI

HAPROXY_BINARY = "haproxy"


class HAProxyError(RepmanError):
    """HAProxy refused its configuration or did not come up."""


def haproxy_binary() -> str | None:
    return shutil.which(HAPROXY_BINARY) or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


@dataclass(frozen=True)
class HAProxyFiles:
    """Where one instance keeps its files, all under ``base``."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "haproxy.cfg"

    @property
    def pidfile(self) -> Path:
        return self.base / "haproxy.pid"

    @property
    def socket(self) -> Path:
        return self.base / "admin.sock"

    @property
    def state_file(self) -> Path:
        return self.base / "server-state"

    @property
    def log(self) -> Path:
        return self.base / "haproxy.log"


def _binary() -> str:
    binary = haproxy_binary()
    if binary is None:
        raise HAProxyError("haproxy is not installed (apt-get install -y haproxy)")
    return binary


def check_config(path: Path) -> None:
    """Let HAProxy itself parse the file; its first alert becomes the error line."""
    proc = subprocess.run([_binary(), "-c", "-q", "-f", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        alerts = [l for l in (proc.stderr + proc.stdout).splitlines() if "ALERT" in l] or [proc.stderr.strip()]
        raise HAProxyError(f"haproxy rejected {path}: {alerts[0].strip()}")


def read_pid(files: HAProxyFiles) -> int | None:
    try:
        pid = int(files.pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def _wait_socket(files: HAProxyFiles, deadline: float, old_pid: int | None = None) -> int:
    while time.monotonic() < deadline:
        pid = read_pid(files)
        if pid and pid != old_pid and files.socket.exists():
            try:
                RuntimeAPI(str(files.socket), timeout=1.0).raw("show info")
                return pid
            except RepmanError:
                pass
        time.sleep(0.05)
    raise HAProxyError(f"haproxy did not come up in {files.base} (see {files.log})")


def write_config(files: HAProxyFiles, text: str) -> bool:
    """Write the config atomically after HAProxy validated it; False when unchanged."""
    files.base.mkdir(parents=True, exist_ok=True)
    if files.config.exists() and files.config.read_text() == text:
        return False
    tmp = files.config.with_suffix(".cfg.new")
    tmp.write_text(text)
    try:
        check_config(tmp)
    except HAProxyError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, files.config)
    return True


def start(files: HAProxyFiles, timeout: float = 15.0) -> int:
    """Start a detached HAProxy on ``files.config`` (no-op when already running); returns its pid."""
    pid = read_pid(files)
    if pid:
        return pid
    files.socket.unlink(missing_ok=True)
    with open(files.log, "ab") as log:
        proc = subprocess.run(
            [_binary(), "-D", "-f", str(files.config), "-p", str(files.pidfile)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, timeout=timeout, env=daemon_environment(),
        )
    if proc.returncode != 0:
        raise HAProxyError(f"haproxy exited {proc.returncode} at start (see {files.log})")
    return _wait_socket(files, time.monotonic() + timeout)


def save_state(files: HAProxyFiles) -> None:
    """Dump the runtime server state so a reload keeps the watcher's routing."""
    state = RuntimeAPI(str(files.socket), timeout=2.0).raw("show servers state")
    files.state_file.write_text(state)


def reload(files: HAProxyFiles, timeout: float = 15.0) -> int:
    """Seamless reload on the current config; returns the new pid."""
    old = read_pid(files)
    if old is None:
        return start(files, timeout)
    save_state(files)
    with open(files.log, "ab") as log:
        proc = subprocess.run(
            [_binary(), "-D", "-f", str(files.config), "-p", str(files.pidfile),
             "-x", str(files.socket), "-sf", str(old)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, timeout=timeout, env=daemon_environment(),
        )
    if proc.returncode != 0:
        raise HAProxyError(f"haproxy reload exited {proc.returncode} (see {files.log})")
    return _wait_socket(files, time.monotonic() + timeout, old_pid=old)


def instance_pids(files: HAProxyFiles) -> list[int]:
    """Every live process of this instance: the current one and old ones still draining a reload."""
    wanted = str(files.config).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"haproxy") and wanted in argv and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def stop(files: HAProxyFiles, timeout: float = 10.0) -> None:
    """Stop the instance and its draining predecessors (SIGTERM, SIGKILL after ``timeout``)."""
    pids = set(instance_pids(files))
    current = read_pid(files)
    if current:
        pids.add(current)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    files.pidfile.unlink(missing_ok=True)
    files.socket.unlink(missing_ok=True)

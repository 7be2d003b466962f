"""Fault injectors against real local servers: kill -9, SIGSTOP/SIGCONT, network partitions.

Partitions are cut on loopback with iptables, not network namespaces: the
testbed's servers, the watcher and the writers all talk over 127.0.0.1, and
moving servers into namespaces would change the addresses every other test and
the local backend use. To tell who talks to whom on one address, each server
process is put into its own cgroup (v2) and the first packet of every
connection it opens is marked with its port (``CONNMARK`` on ``--ctstate NEW``,
matched with ``-m cgroup``); the watcher and the clients stay unmarked. A cut drops
the packets of the marked connections in both directions (the connmark follows
the replies): "master from the replicas only" leaves the watcher's and clients'
connections alone; "master from the watcher only" drops the unmarked connections
to the master's port, which are the watcher's *and* the in-process writers' (the
watcher next to the application, cut off together). Every rule lives in chains of
its own, jumped to from OUTPUT, removed by ``close()`` with the cgroups.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from repman.db import ServerAddress

CGROUP_ROOT = Path("/sys/fs/cgroup/unified")


def pid_of(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def gone(pid: int) -> bool:
    """Dead or a zombie: a killed server whose parent (maybe this process) has not reaped it yet
    still answers ``kill(pid, 0)`` but holds no socket any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def kill9(pid: int) -> None:
    """kill -9 and wait for the process to be gone (SIGKILL is asynchronous)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not gone(pid):
        time.sleep(0.002)


@dataclass
class Pause:
    """SIGSTOP now, SIGCONT after ``seconds`` in a timer thread (or at ``resume()``)."""

    pid: int
    seconds: float
    stopped_at: float = 0.0
    resumed_at: float = 0.0

    def __post_init__(self) -> None:
        self._timer: threading.Timer | None = None

    def start(self) -> Pause:
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped_at = time.monotonic()
        self._timer = threading.Timer(self.seconds, self.resume)
        self._timer.daemon = True
        self._timer.start()
        return self

    def resume(self) -> None:
        if self.resumed_at:
            return
        self.resumed_at = time.monotonic()
        try:
            os.kill(self.pid, signal.SIGCONT)
        except OSError:            # fenced (killed) meanwhile
            pass

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.resume()


def iptables_available() -> str | None:
    """Why iptables partitions cannot run here, or None."""
    if os.geteuid() != 0:
        return "iptables partitions need root"
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        return f"no cgroup v2 hierarchy at {CGROUP_ROOT}"
    done = subprocess.run(["iptables", "-L", "OUTPUT", "-n"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"iptables does not work: {done.stderr.strip()}"
    return None


def _ipt(*args: str, check: bool = True) -> None:
    done = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"iptables {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Network:
    """Loopback partitions between enrolled server processes, the watcher and clients."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    enrolled: dict[ServerAddress, int] = field(default_factory=dict)
    cuts: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def chain(self) -> str:
        return f"RMLAB{self.tag}"

    @property
    def mark_chain(self) -> str:
        return f"RMLABM{self.tag}"

    def group(self, addr: ServerAddress) -> Path:
        return CGROUP_ROOT / f"rmlab{self.tag}" / f"p{addr.port}"

    def open(self) -> Network:
        (CGROUP_ROOT / f"rmlab{self.tag}").mkdir(exist_ok=True)
        _ipt("-N", self.mark_chain)
        _ipt("-N", self.chain)
        _ipt("-I", "OUTPUT", "1", "-j", self.chain)
        _ipt("-I", "OUTPUT", "1", "-j", self.mark_chain)
        return self

    def enroll(self, addr: ServerAddress, pid: int) -> None:
        """Put the server's process into its cgroup; connections it opens from now on are its own."""
        group = self.group(addr)
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(str(pid))
        if addr not in self.enrolled:
            _ipt("-A", self.mark_chain, "-m", "conntrack", "--ctstate", "NEW", "-m", "cgroup", "--path",
                 str(group.relative_to(CGROUP_ROOT)), "-j", "CONNMARK", "--set-mark", str(addr.port))
        self.enrolled[addr] = pid

    def _drop(self, *match: str) -> None:
        rule = (*match, "-j", "DROP")
        _ipt("-A", self.chain, *rule)
        self.cuts.append(rule)

    def isolate(self, master: ServerAddress) -> None:
        """Nobody reaches the master and it reaches nobody (a cut cable)."""
        self._drop("-p", "tcp", "--dport", str(master.port))
        self._drop("-p", "tcp", "--sport", str(master.port))
        self._drop("-m", "connmark", "--mark", str(master.port))

    def cut_between(self, one: ServerAddress, others: Sequence[ServerAddress]) -> None:
        """Connections between ``one`` and each of ``others`` (either side opened them) drop."""
        for o in others:
            for mark, port in ((o.port, one.port), (one.port, o.port)):
                self._drop("-m", "connmark", "--mark", str(mark), "-p", "tcp", "--dport", str(port))
                self._drop("-m", "connmark", "--mark", str(mark), "-p", "tcp", "--sport", str(port))

    def cut_unmarked(self, server: ServerAddress) -> None:
        """Connections to ``server`` that no enrolled server opened (the watcher's, clients') drop."""
        self._drop("-m", "connmark", "--mark", "0", "-p", "tcp", "--dport", str(server.port))
        self._drop("-m", "connmark", "--mark", "0", "-p", "tcp", "--sport", str(server.port))

    def heal(self) -> None:
        _ipt("-F", self.chain, check=False)
        self.cuts.clear()

    def close(self) -> None:
        """Remove every rule, chain and cgroup this network created (processes go back to the root)."""
        self.heal()
        for chain in (self.chain, self.mark_chain):
            _ipt("-D", "OUTPUT", "-j", chain, check=False)
            _ipt("-F", chain, check=False)
            _ipt("-X", chain, check=False)
        top = CGROUP_ROOT / f"rmlab{self.tag}"
        if top.exists():
            for group in top.iterdir():
                if group.is_dir():
                    procs = (group / "cgroup.procs").read_text().split() if (group / "cgroup.procs").exists() else []
                    for pid in procs:
                        try:
                            (CGROUP_ROOT / "cgroup.procs").write_text(pid)
                        except OSError:
                            pass
                    try:
                        group.rmdir()
                    except OSError:
                        pass
            try:
                top.rmdir()
            except OSError:
                pass

"""Throw-away "hosts" for tests: network namespaces on a private bridge, each with its own sshd.

Every lab gets a random /24 inside 198.18.0.0/15 (the range reserved for network
tests) on a bridge with no uplink, so its traffic never leaves this machine. The
bridge carries the .1 address: it is the "controller" the provisioner runs from.
``NetnsLab.close()`` removes sshd processes, namespaces, veths and the bridge even
after a failure (use it as a context manager or from a fixture finalizer).
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.polling import wait_until

NET_PREFIX = "198.18"


def skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for binary in ("ip", "sshd", "ssh-keygen"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            return f"{binary} is not installed"
    probe = f"rmprobe{secrets.token_hex(3)}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` is not available: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _used_subnets() -> set[str]:
    out = _ip("-4", "route", "show", "table", "all", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line and line[0].isdigit()}


def _sshd_binary() -> str:
    return shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Host:
    """One namespace with one address and, once started, an sshd on port 22."""

    name: str
    netns: str
    address: str
    veth_root: str
    workdir: Path
    sshd: subprocess.Popen | None = None
    host_key_line: str = ""

    def run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside the namespace (for checks from the test side)."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd],
                              capture_output=True, text=True, timeout=timeout)

    def sshd_pid(self) -> int | None:
        """``ip netns exec`` execs sshd, so the Popen pid is sshd's own."""
        return self.sshd.pid if self.sshd is not None and self.sshd.poll() is None else None

    def cut(self) -> None:
        """A network cut: the host's cable is pulled (its end of the veth goes down)."""
        _ip("link", "set", self.veth_root, "down")

    def restore(self) -> None:
        _ip("link", "set", self.veth_root, "up")


@dataclass
class NetnsLab:
    """A private L2 network with N namespace hosts; the test process sits on the bridge."""

    base: Path
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    client_key: Path | None = None

    @classmethod
    def create(cls, base: Path, count: int) -> NetnsLab:
        lab = cls(base=base)
        try:
            lab._setup(count)
        except BaseException:
            lab.close()
            raise
        return lab

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self, count: int) -> None:
        used = _used_subnets()
        free = [f"{NET_PREFIX}.{n}.0/24" for n in range(0, 256) if f"{NET_PREFIX}.{n}.0/24" not in used]
        self.subnet = random.choice(free)
        third = self.subnet.split(".")[2]
        self.gateway = f"{NET_PREFIX}.{third}.1"
        self.bridge = f"rmbr{self.tag}"
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self._allow_bridged(True)
        for i in range(1, count + 1):
            netns = f"rmh{self.tag}-{i}"
            veth_root, veth_ns = f"rmv{self.tag}{i}", f"rmp{self.tag}{i}"
            host = Host(name=f"host{i}", netns=netns, address=f"{NET_PREFIX}.{third}.{10 + i}",
                        veth_root=veth_root, workdir=self.base / f"host{i}")
            self.hosts.append(host)
            host.workdir.mkdir(parents=True, exist_ok=True)
            _ip("netns", "add", netns)
            _ip("link", "add", veth_root, "type", "veth", "peer", "name", veth_ns)
            _ip("link", "set", veth_ns, "netns", netns)
            _ip("link", "set", veth_root, "master", self.bridge)
            _ip("link", "set", veth_root, "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "link", "set", veth_ns, "name", "eth0")
            _ip("-n", netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "route", "add", "default", "via", self.gateway)

    # -- sshd -------------------------------------------------------------------------------
    def make_client_key(self) -> Path:
        """An ed25519 key pair the provisioner logs in with (private key text is the secret)."""
        if self.client_key is None:
            key = self.base / "client_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "repman-test",
                            "-f", str(key)], check=True)
            self.client_key = key
        return self.client_key

    def start_sshd(self, host: Host, password_auth: bool = False) -> None:
        """A real OpenSSH server inside the host's namespace, with its own config and host key."""
        d = host.workdir / "sshd"
        d.mkdir(parents=True, exist_ok=True)
        hostkey = d / "ssh_host_ed25519_key"
        if not hostkey.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
        pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
        host.host_key_line = f"{host.address} {pub[0]} {pub[1]}"
        authorized = d / "authorized_keys"
        authorized.write_text(Path(f"{self.make_client_key()}.pub").read_text())
        authorized.chmod(0o600)
        cfg = d / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress {host.address}",
            f"HostKey {hostkey}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin yes",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if password_auth else 'no'}",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "LogLevel ERROR",
            "MaxStartups 50",
            "",
        ]))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        log = open(d / "sshd.log", "ab")
        host.sshd = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, _sshd_binary(), "-D", "-e", "-f", str(cfg), "-p", "22"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        def listening() -> bool:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise RuntimeError(f"sshd in {host.netns} exited: {(d / 'sshd.log').read_text()[-500:]}")
            return _port_open(host.address, 22)

        try:
            wait_until(listening, timeout=30, what=f"sshd in {host.netns} to listen", every=0.05)
        except AssertionError:
            raise RuntimeError(f"sshd in {host.netns} did not listen on {host.address}:22") from None

    def known_hosts(self) -> Path:
        path = self.base / "known_hosts"
        path.write_text("".join(f"{h.host_key_line}\n" for h in self.hosts if h.host_key_line))
        return path

    # -- teardown ---------------------------------------------------------------------------
    def kill_processes_in(self, host: Host) -> None:
        """Everything still running in the namespace (mariadbd started over SSH, supervisors)."""
        done = _ip("netns", "pids", host.netns, check=False)
        for pid in (int(p) for p in done.stdout.split() if p.strip().isdigit()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for host in self.hosts:
            if host.sshd is not None and host.sshd.poll() is None:
                try:
                    os.killpg(host.sshd.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                host.sshd.wait(timeout=10)
            self.kill_processes_in(host)
            _ip("link", "del", host.veth_root, check=False)
            _ip("netns", "del", host.netns, check=False)
        if self.bridge:
            self._allow_bridged(False)
            _ip("link", "del", self.bridge, check=False)

    def _allow_bridged(self, on: bool) -> None:
        """Let the hosts talk across our bridge whatever the FORWARD policy.

        Once dockerd has run on the machine, br_netfilter sends bridged frames through
        iptables' FORWARD chain and dockerd sets its policy to DROP: without this rule
        the hosts could no longer reach each other (tests that cut the network add
        their own rules in front of it)."""
        if shutil.which("iptables") is None:
            return
        rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        if on:
            subprocess.run(["iptables", "-I", *rule], capture_output=True)
        else:
            while subprocess.run(["iptables", "-D", *rule], capture_output=True).returncode == 0:
                pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0

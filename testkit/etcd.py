"""Real etcd-server instances for the HA tests: one node or a 3-node cluster on free ports.

Each member is ``/usr/bin/etcd`` with its own data directory under the test's temporary
directory, started detached in its own process group so a test can stop (SIGTERM), kill -9
or restart one member, and lose or restore the quorum for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from repman.local.ports import free_ports
from repman.watcher.ha.etcd import EtcdClient, TlsFiles, ssl_context
from testkit.polling import wait_until

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
HAVE_ETCD = os.access(ETCD, os.X_OK)


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclass
class EtcdCluster:
    """``size`` members on 127.0.0.1; ``start()`` waits until the cluster has a leader."""

    base: Path
    size: int = 1
    extra_args: list[str] = field(default_factory=list)
    tls_dir: Path | None = None      # ca.pem, server-cert.pem, server-key.pem: clients speak HTTPS with a client cert
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = free_ports(2 * self.size)
        for i in range(self.size):
            name = f"e{i}"
            self.members.append(Member(name, ports[2 * i], ports[2 * i + 1], self.base / name / "data",
                                       self.base / name / "etcd.log"))

    @property
    def scheme(self) -> str:
        return "https" if self.tls_dir is not None else "http"

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)

    def start_member(self, m: Member) -> None:
        m.data_dir.mkdir(parents=True, exist_ok=True)
        args = [ETCD, "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", f"{self.scheme}://127.0.0.1:{m.client_port}",
                "--advertise-client-urls", f"{self.scheme}://127.0.0.1:{m.client_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{m.peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{m.peer_port}",
                "--initial-cluster", self._initial_cluster(), "--initial-cluster-state", "new",
                "--initial-cluster-token", f"repman-test-{self.base.name}",
                # short elections: a lost member is noticed in about a second, as in the tests' TTLs
                "--heartbeat-interval", "100", "--election-timeout", "1000", *self.extra_args]
        if self.tls_dir is not None:
            args += ["--cert-file", str(self.tls_dir / "server-cert.pem"), "--key-file",
                     str(self.tls_dir / "server-key.pem"), "--trusted-ca-file", str(self.tls_dir / "ca.pem"),
                     "--client-cert-auth"]
        with open(m.log, "ab") as log:
            m.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={"PATH": "/usr/bin:/bin",
                                                                      "ETCD_UNSUPPORTED_ARCH": "amd64"})

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for m in self.members:
            if m.process is None or m.process.poll() is not None:
                self.start_member(m)
        wait_until(self.healthy, timeout, f"etcd at {','.join(self.endpoints)} to be healthy", every=0.2)
        return self

    def healthy(self) -> bool:
        """Every running member answers /health with a leader."""
        for m in self.members:
            if m.process is None or m.process.poll() is not None:
                continue
            tls = self.tls_dir
            verify = ssl_context(TlsFiles(str(tls / "ca.pem"), str(tls / "client-cert.pem"),
                                          str(tls / "client-key.pem"))) if tls else True
            try:
                r = httpx.get(f"{self.scheme}://{m.endpoint}/health", timeout=1.0, verify=verify)
            except httpx.HTTPError:
                return False
            if r.status_code != 200 or r.json().get("health") != "true":
                return False
        return True

    def signal(self, m: Member, sig: int) -> None:
        if m.process is not None and m.process.poll() is None:
            os.killpg(m.process.pid, sig)
            m.process.wait(10)

    def stop(self, m: Member | None = None) -> None:
        for member in [m] if m is not None else self.members:
            self.signal(member, signal.SIGTERM)

    def kill(self, m: Member) -> None:
        self.signal(m, signal.SIGKILL)

    def client(self, **kw: object) -> EtcdClient:
        return EtcdClient(self.endpoints, **kw)  # type: ignore[arg-type]

    def destroy(self) -> None:
        for m in self.members:
            try:
                self.kill(m)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.base, ignore_errors=True)


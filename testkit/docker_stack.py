"""One cluster of stacks/Pulumi.docker.yaml under the embedded engine, for the container tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from repman.db import Credential, ServerAddress, connect, query
from repman.local.ports import free_port_block
from testkit.docker_engine import ROOT

ADMIN = Credential("repman", "docker-admin-Pw1")


TAGS = ["gtidstrict", "row", "readonly", "noquerycache", "smallredolog", "nodurable", "semisync"]


class DockerStack:
    """One cluster of stacks/Pulumi.docker.yaml under `python -m embedded_engine`."""

    def __init__(self, images, state_dir: Path) -> None:
        self.name = f"dk{uuid.uuid4().hex[:6]}"
        self.base_port = free_port_block(5)      # 3 nodes, then HAProxy's write and read ports
        self.write_port, self.read_port = self.base_port + 3, self.base_port + 4
        self.config = {
            "cluster-name": self.name, "prov-db-image": images.db, "prov-watcher-image": images.watcher,
            "db-servers-base-port": str(self.base_port), "prov-state-dir": str(state_dir),
            "prov-protect": "false", "prov-db-tags": json.dumps(TAGS), "failover-mode": "automatic",
            "monitoring-ticker": "0.5", "db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
            "replication-credential": "repl:docker-repl-Pw2", "haproxy": "true",
            "haproxy-write-port": str(self.write_port), "haproxy-read-port": str(self.read_port),
            "prov-proxy-image": images.proxy,
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
        self.env["PULUMI_CONFIG_PASSPHRASE"] = "repman-example"

    def run(self, command: str, *extra: str, **overrides: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "embedded_engine", command, "--yes", "--stack", "docker", *extra]
        for key, value in {**self.config, **overrides}.items():
            args += ["-c", f"{key}={value}"]
        proc = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc

    def address(self, i: int) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.base_port + i)

    def container(self, i: int) -> str:
        return f"{self.name}-db{i + 1}"


def node_state(addr: ServerAddress) -> dict:
    with connect(addr, ADMIN, timeout=2) as conn:
        ro = int(query(conn, "SELECT @@GLOBAL.read_only AS ro")[0]["ro"])
        slave = query(conn, "SHOW SLAVE STATUS")
        return {"ro": ro, "master": slave[0]["Master_Host"] if slave else None}

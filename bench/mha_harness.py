"""MHA 0.58 driven against a repman Testbed cluster: a private sshd, MHA's config, its commands.

MHA copies binlogs and relay logs with plain ssh/scp, so a private sshd listens on
a free loopback port with its own host key and one authorized key (the system's
sshd and root's ~/.ssh stay untouched). MariaDB needs two fixes in MHA's Perl,
made at load time by ``bench/mha/MHAMariaDBOverlay.pm`` (PERL5LIB/PERL5OPT, set for
the manager here and for the node scripts by the sshd's SetEnv).

What works with MariaDB 10.11: log_bin + log_slave_updates (repman's my.cnf has
both), relay_log_purge=0 (set here at run time), and MHA's GTID-less
``CHANGE MASTER TO MASTER_LOG_FILE/MASTER_LOG_POS``: MariaDB accepts it and turns
the replica to ``Using_Gtid=No``. MariaDB still records every GTID in its binlog
and gtid_slave_pos, so after an MHA run ``back_to_gtid`` points the replicas again
by GTID for repman's turn.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from repman.bootstrap import change_master_sql
from repman.db import Credential, ServerAddress, connect, execute, query
from repman.gtid import GtidPosition
from repman.local.ports import free_port_block
from testkit.polling import wait_until

HERE = Path(__file__).resolve().parent
OVERLAY_DIR = HERE / "mha"
ONLINE_CHANGE = OVERLAY_DIR / "online_change.pl"
MHA_TOOLS = ("masterha_manager", "masterha_master_switch", "save_binary_logs", "apply_diff_relay_logs")


def mha_available() -> str:
    """'' when MHA and sshd are installed, else what is missing."""
    missing = [t for t in (*MHA_TOOLS, "ssh-keygen", "ssh") if shutil.which(t) is None]
    if not Path("/usr/sbin/sshd").exists():
        missing.append("/usr/sbin/sshd")
    return ", ".join(missing)


def perl_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PERL5LIB"] = str(OVERLAY_DIR) + (":" + env["PERL5LIB"] if env.get("PERL5LIB") else "")
    env["PERL5OPT"] = "-MMHAMariaDBOverlay"
    return env


@dataclass
class PrivateSshd:
    """An sshd on 127.0.0.1:<free port>, root login by one key only, for MHA's ssh/scp."""

    base: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def key(self) -> Path:
        return self.base / "client_key"

    @property
    def ssh_options(self) -> str:
        return f"-i {self.key} -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"

    def start(self) -> PrivateSshd:
        self.base.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.base / name)], check=True)
        shutil.copy(self.base / "client_key.pub", self.base / "authorized_keys")
        os.chmod(self.base / "authorized_keys", 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)    # sshd's privilege-separation folder
        self.port = free_port_block(1)
        config = self.base / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.base / 'host_key'}",
            f"PidFile {self.base / 'sshd.pid'}", f"AuthorizedKeysFile {self.base / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "Subsystem sftp /usr/lib/openssh/sftp-server",
            "MaxStartups 100", "MaxSessions 100",
            f"SetEnv PERL5LIB={OVERLAY_DIR} PERL5OPT=-MMHAMariaDBOverlay",
            "",
        ]))
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.base / "sshd.log", "wb"))
        def accepts_key() -> bool:
            return subprocess.run(["ssh", "-p", str(self.port), *self.ssh_options.split(), "-o", "BatchMode=yes",
                                   "-o", "StrictHostKeyChecking=no", "root@127.0.0.1", "true"],
                                  capture_output=True).returncode == 0

        try:
            wait_until(accepts_key, timeout=10, what="the private sshd to accept the key")
        except AssertionError:
            self.stop()
            raise RuntimeError(
                f"private sshd did not accept the key: {(self.base / 'sshd.log').read_text()[-500:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_mha_config(path: Path, servers: list[ServerAddress], datadirs: dict[str, str], admin: Credential,
                     repl: Credential, sshd: PrivateSshd, workdir: Path) -> Path:
    """app.cnf for MHA: every server a candidate, ping_interval=1 (its minimum)."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[server default]",
        f"user={admin.user}", f"password={admin.password}",
        f"repl_user={repl.user}", f"repl_password={repl.password}",
        "ssh_user=root", f"ssh_port={sshd.port}", f"ssh_options={sshd.ssh_options}",
        f"manager_workdir={workdir}", f"manager_log={workdir / 'manager.log'}",
        f"remote_workdir={workdir / 'remote'}",
        "ping_interval=1", "ping_type=SELECT",
        f"master_ip_online_change_script={ONLINE_CHANGE}",
        "",
    ]
    for i, addr in enumerate(servers, 1):
        lines += [f"[server{i}]", f"hostname={addr.host}", f"port={addr.port}",
                  f"master_binlog_dir={datadirs[addr.url]}", "candidate_master=1", "check_repl_delay=0", ""]
    path.write_text("\n".join(lines))
    return path


def prepare_servers(servers: list[ServerAddress], admin: Credential) -> None:
    """relay_log_purge=0 everywhere: MHA needs the relay logs to find what a replica lacks."""
    for addr in servers:
        with connect(addr, admin, timeout=3) as conn:
            execute(conn, "SET GLOBAL relay_log_purge = 0")


def back_to_gtid(servers: list[ServerAddress], master: ServerAddress, admin: Credential,
                 repl: Credential) -> None:
    """After MHA's file/position moves: every replica follows ``master`` by GTID again."""
    for addr in servers:
        if addr == master:
            continue
        with connect(addr, admin, timeout=3, read_timeout=30) as conn:
            execute(conn, "STOP SLAVE")            # first: the SQL thread must not move on meanwhile
            row = query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS b, @@GLOBAL.gtid_slave_pos AS s")[0]
            merged = dict(GtidPosition.parse(str(row["s"] or "")).by_domain)
            for domain, gtid in GtidPosition.parse(str(row["b"] or "")).by_domain.items():
                if domain not in merged or gtid.seq > merged[domain].seq:
                    merged[domain] = gtid
            execute(conn, "SET GLOBAL gtid_slave_pos = %s", (str(GtidPosition(merged)),))
            sql, args = change_master_sql(master, repl, 1.0, 1)
            execute(conn, sql, args)
            execute(conn, "SET GLOBAL read_only = ON")
            execute(conn, "START SLAVE")


def run(argv: list[str], timeout: float, log: Path) -> tuple[int, float]:
    """Run an MHA command with the overlay; (exit code, wall seconds); output appended to ``log``."""
    t0 = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=perl_env(), timeout=timeout,
                              stdin=subprocess.DEVNULL)
    return done.returncode, time.monotonic() - t0


def start_manager(config: Path, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen(["masterha_manager", f"--conf={config}", "--ignore_last_failover"],
                            stdout=out, stderr=subprocess.STDOUT, env=perl_env(), stdin=subprocess.DEVNULL,
                            start_new_session=True)


def stop_manager(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

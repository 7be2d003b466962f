"""A real sshd on a free loopback port with a throw-away key pair (root login by key only),
for restic's SFTP backend. ``close()`` stops it."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from repman.local.ports import free_port_block
from testkit.polling import wait_until

HAVE_SSHD = shutil.which("sshd") is not None or Path("/usr/sbin/sshd").exists()
SFTP_SERVER = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")
                    if Path(p).exists()), "internal-sftp")


@dataclass
class LocalSshd:
    folder: Path
    port: int
    key: Path
    proc: subprocess.Popen

    @classmethod
    def start(cls, folder: Path) -> LocalSshd:
        folder.mkdir(parents=True, exist_ok=True)
        key, hostkey = folder / "client_key", folder / "host_key"
        for k in (key, hostkey):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
        (folder / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        port = free_port_block(1)
        cfg = folder / "sshd_config"
        cfg.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"HostKey {hostkey}", f"PidFile {folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "UsePAM no", "StrictModes no", f"Subsystem sftp {SFTP_SERVER}", "",
        ]))
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        Path("/run/sshd").mkdir(exist_ok=True)   # privilege separation directory
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg), "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "wb"))
        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("sshd exited")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        try:
            wait_until(listening, timeout=10, what="sshd to listen", every=0.05)
        except (RuntimeError, AssertionError):
            proc.kill()
            raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()[-300:]}") from None
        return cls(folder, port, key, proc)

    @property
    def sftp_command(self) -> str:
        return (f"ssh -p {self.port} -i {self.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                f"-o BatchMode=yes root@127.0.0.1 -s sftp")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

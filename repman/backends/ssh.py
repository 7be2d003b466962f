"""SSH sessions to on-premise hosts with fabric: no agent, strict host keys, one-line errors.

Every failure becomes a ``HostStepError`` naming the host and the provisioning step,
so a user sees "host 10.0.0.3: step connect: connection refused" rather than a
paramiko traceback. Secrets (key text, passwords, SQL) travel on stdin, never on a
command line that ``ps`` on the host would show.
"""

from __future__ import annotations

import io
import select
import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from fabric import Connection

from repman.errors import ConfigError, RepmanError


class HostStepError(RepmanError):
    """A provisioning step failed on one host."""

    def __init__(self, host: str, step: str, message: str) -> None:
        self.host = host
        self.step = step
        super().__init__(f"host {host}: step {step}: {message}")


@dataclass(frozen=True)
class SshAuth:
    """How to log in: a private key (text) and/or a password, plus host key policy."""

    user: str = "root"
    private_key: str = ""
    password: str = ""
    known_hosts: str = ""
    strict_host_key_checking: bool = True
    port: int = 22
    connect_timeout: float = 10.0
    command_timeout: float = 300.0

    def __repr__(self) -> str:  # never print key material or passwords
        return (f"SshAuth(user={self.user!r}, port={self.port}, key={'yes' if self.private_key else 'no'}, "
                f"password={'yes' if self.password else 'no'}, known_hosts={self.known_hosts!r})")


def load_private_key(text: str, key: str = "onpremise-ssh-key", passphrase: str | None = None) -> paramiko.PKey:
    """Parse OpenSSH/PEM private key text of any type paramiko supports."""
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise ConfigError(key, "the private key is protected by a passphrase (not supported)") from None
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(str(exc))
    raise ConfigError(key, "not a private key paramiko can read (ed25519, ecdsa or rsa)")


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, paramiko.BadHostKeyException):
        return "host key does not match known_hosts (possible man-in-the-middle)"
    if isinstance(exc, paramiko.AuthenticationException):
        return "authentication failed (check onpremise-ssh-user and the key/password)"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused (no SSH server listening)"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g}s (host down or network cut)"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return "host key not in known_hosts (add it, or set onpremise-ssh-strict-host-key-checking: false)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


@dataclass
class HostSession:
    """One open SSH connection to one host; commands run with sudo when not root."""

    host: str
    auth: SshAuth
    _conn: Connection | None = field(default=None, repr=False)

    @property
    def sudo_prefix(self) -> str:
        return "" if self.auth.user == "root" else "sudo -n "

    def open(self) -> HostSession:
        if self._conn is not None:
            return self
        kwargs: dict = {"allow_agent": False, "look_for_keys": False,
                        "banner_timeout": self.auth.connect_timeout, "auth_timeout": self.auth.connect_timeout}
        if self.auth.private_key:
            kwargs["pkey"] = load_private_key(self.auth.private_key)
        if self.auth.password:
            kwargs["password"] = self.auth.password
        if not self.auth.private_key and not self.auth.password:
            raise ConfigError("onpremise-ssh-key", "set an SSH private key or onpremise-ssh-password")
        conn = Connection(self.host, user=self.auth.user, port=self.auth.port,
                          connect_timeout=self.auth.connect_timeout, connect_kwargs=kwargs)
        client = conn.client
        if self.auth.strict_host_key_checking:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        if self.auth.known_hosts:
            path = Path(self.auth.known_hosts).expanduser()
            try:
                client.load_host_keys(str(path))
            except OSError as exc:
                raise ConfigError("onpremise-known-hosts", f"cannot read {path}: {exc.strerror}") from None
        try:
            conn.open()
        except Exception as exc:  # paramiko raises many types; all become one line
            conn.close()
            raise HostStepError(self.host, "connect", _describe(exc, self.auth.connect_timeout)) from None
        self._conn = conn
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> HostSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, step: str, command: str, stdin: str | None = None, privileged: bool = True,
            check: bool = True, timeout: float | None = None) -> tuple[int, str, str]:
        """Run one shell command; a non-zero exit (when checked) raises naming host and step."""
        self.open()
        assert self._conn is not None
        full = (self.sudo_prefix if privileged else "") + "sh -c " + shlex.quote(command)
        limit = timeout or self.auth.command_timeout
        try:
            code, out, err = _exec(self._conn, full, stdin, limit)
        except Exception as exc:
            self.close()
            raise HostStepError(self.host, step, _describe(exc, limit)) from None
        if check and code != 0:
            tail = (err.strip() or out.strip()).splitlines()[-1:] or ["no output"]
            raise HostStepError(self.host, step, f"exit {code}: {tail[0]}")
        return code, out, err

    def write_file(self, step: str, path: str, content: str, mode: str = "0644") -> None:
        """Atomically replace a file with content sent on stdin."""
        q = shlex.quote(path)
        tmp = shlex.quote(path + ".repman-tmp")
        self.run(step, f"umask 077 && cat > {tmp} && chmod {mode} {tmp} && mv -f {tmp} {q}", stdin=content)

    def read_file(self, step: str, path: str) -> str | None:
        code, out, _ = self.run(step, f"cat {shlex.quote(path)} 2>/dev/null", check=False)
        return out if code == 0 else None


def _exec(conn: Connection, command: str, stdin: str | None, timeout: float) -> tuple[int, str, str]:
    """One exec channel on fabric's transport: stdin sent at once, both streams drained.

    (invoke's runner feeds stdin one byte per 10 ms, far too slow for config files.)
    """
    transport = conn.client.get_transport()
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("SSH transport is closed")
    chan = transport.open_session(timeout=timeout)
    try:
        chan.exec_command(command)
        if stdin:
            chan.sendall(stdin.encode())
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            select.select([chan], [], [], min(remaining, 1.0))
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.eof_received or chan.closed:
                    break
        return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        chan.close()

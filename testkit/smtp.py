"""A real local SMTP server (aiosmtpd) that keeps the mails it receives, for the alert tests.

Optionally with STARTTLS (a throw-away CA's certificate) and AUTH LOGIN/PLAIN against one
user, so the client's TLS and login code runs against a real server, not a stand-in.
"""

from __future__ import annotations

import ssl
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from repman.local.ports import free_port_block
from repman.tls import ensure_server_certificates


class _Keep:
    def __init__(self, box: SmtpServer) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.box.lock:
            self.box.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


class SmtpServer:
    """``with SmtpServer(tmp, login=("u", "p"), tls=True) as smtp: ... smtp.mails``."""

    def __init__(self, base: Path | None = None, login: tuple[str, str] | None = None, tls: bool = False) -> None:
        self.port = free_port_block(1)
        self.mails: list[tuple[list[str], Message]] = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        kwargs: dict[str, Any] = {}
        if tls:
            assert base is not None, "TLS needs a folder for the certificate"
            ensure_server_certificates(base, ["127.0.0.1"])
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(base / "server-cert.pem", base / "server-key.pem")
            kwargs.update(tls_context=ctx, require_starttls=True)
        if login is not None:
            def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
                if ok:
                    self.logins.append(data.login.decode())
                return AuthResult(success=ok, handled=False)
            # AUTH is advertised either way; it is required only over TLS (aiosmtpd warns otherwise)
            kwargs.update(authenticator=check, auth_required=tls, auth_require_tls=tls)
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port, **kwargs)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

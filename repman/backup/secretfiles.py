"""Secrets handed to tools through private files, never argv or the environment.

``ps`` shows every process's argv and ``/proc/PID/environ`` is readable by the
same user, so a password passed either way leaks; a 0600 file in a 0700
directory removed right after the tool exits does not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from repman.db import Credential, ServerAddress


@contextmanager
def private_file(content: str, name: str = "secret") -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="repman-"))
    os.chmod(folder, 0o700)
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_option_text(address: ServerAddress, credential: Credential, groups: tuple[str, ...] = ("client",)) -> str:
    body = (f"user={_quoted(credential.user)}\npassword={_quoted(credential.password)}\n"
            f"host={address.host}\nport={address.port}\nprotocol=tcp\n")
    return "".join(f"[{g}]\n{body}" for g in groups)


@contextmanager
def client_options(address: ServerAddress, credential: Credential,
                   groups: tuple[str, ...] = ("client",)) -> Iterator[Path]:
    """A my.cnf-style file for ``--defaults-extra-file`` (the first option of the tool)."""
    with private_file(client_option_text(address, credential, groups), "client.cnf") as path:
        yield path

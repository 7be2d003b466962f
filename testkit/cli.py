"""The `repman` command as a subprocess, and the one-line error rule every CLI test checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).parent / "repman"


REPMAN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "repman.cli"]


def repman(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*REPMAN, *args], capture_output=True, text=True, timeout=timeout, input=stdin)


def one_line_error(p: subprocess.CompletedProcess, code: int) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repman: "), p.stderr
    return lines[0]


# -- no server needed -----------------------------------------------------------------------

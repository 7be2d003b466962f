"""stacks/Pulumi.local.yaml run by the embedded engine with moved ports and state (the e2e tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def local_config() -> dict:
    """The stack as the engine reads it: secure credentials decrypted (example passphrase, conftest)."""
    from components.pulumi_config import load_stack_config

    return load_stack_config(ROOT, "local")


def engine(*args: str, overrides: list[str], check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "embedded_engine", *args, "--yes", "--stack", "local"]
    for item in overrides:
        cmd += ["-c", item]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done

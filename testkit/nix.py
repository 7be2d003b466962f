"""Running the Debian/Nixpkgs ``nix-instantiate`` on the repository's Nix files in tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent
NIX_DIR = REPO / "nix"
EXAMPLES = NIX_DIR / "examples"
NIX = shutil.which("nix-instantiate")
needs_nix = pytest.mark.skipif(
    NIX is None, reason="nix-instantiate is not installed (apt-get install nix-bin; scripts/setup.sh installs it)")
TIMEOUT = 180


def run_nix(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    assert NIX is not None
    return subprocess.run([NIX, "--readonly-mode", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=REPO, check=False)


def nix_json(args: Sequence[str]) -> Any:
    """``--eval --strict --json`` and the decoded result; fails the test with Nix's error."""
    proc = run_nix(["--eval", "--strict", "--json", *args])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def nix_expr(expr: str) -> Any:
    return nix_json(["-E", expr])


def nix_error(args: Sequence[str]) -> str:
    """Evaluate expecting failure; returns stderr."""
    proc = run_nix(["--eval", "--strict", "--json", *args])
    assert proc.returncode != 0, f"evaluation unexpectedly succeeded: {proc.stdout[:500]}"
    return proc.stderr


def eval_cluster(declaration: str | Path, output: str = "config") -> Any:
    """Evaluate a declaration (a file, or a Nix expression text) with nix/eval-cluster.nix."""
    return nix_json(_cluster_args(declaration, output))


def eval_cluster_error(declaration: str | Path) -> str:
    return nix_error(_cluster_args(declaration, "config"))


def _cluster_args(declaration: str | Path, output: str) -> list[str]:
    args = [str(NIX_DIR / "eval-cluster.nix"), "--argstr", "output", output]
    if isinstance(declaration, Path):
        return args + ["--argstr", "declaration", str(declaration)]
    return args + ["--arg", "declaration", declaration]


def nix_string(text: str) -> str:
    """A Python string as a Nix string literal."""
    return json.dumps(text).replace("${", "\\${")

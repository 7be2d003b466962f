"""Imports run one way (docs/ARCHITECTURE.md): the contracts of pyproject's [tool.importlinter].

``lint-imports`` checks the tree as it is; each contract is also shown to fail on a copy of
the tree with one deliberately wrong import, so a contract that could never break (a typo
in a module name, a source package it does not cover) fails here too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("repman", "components", "embedded_engine")
CONTRACTS = {c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())
             ["tool"]["importlinter"]["contracts"]}

# One wrong import per contract: (contract id, file it goes into, the import line).
WRONG_IMPORTS = [
    ("runtime-without-pulumi", "repman/db.py", "import pulumi"),
    ("runtime-without-pulumi", "repman/watcher/analysis.py", "import components.cluster"),
    ("routing-below-watcher-and-backends", "repman/routing/base.py", "import repman.backends.container"),
    ("routing-below-watcher-and-backends", "repman/routing/haproxy.py", "import repman.local.haproxy_process"),
    ("watcher-below-face-and-spec", "repman/watcher/config.py", "import repman.api.config"),
    ("watcher-below-face-and-spec", "repman/watcher/keys.py", "import repman.spec"),
    ("core-below-everything", "repman/topology.py", "import repman.watcher.checks"),
    ("local-below-watcher", "repman/local/ports.py", "import repman.watcher.oplock"),
    ("components-without-embedded-engine", "components/cluster.py", "import embedded_engine.engine"),
    ("embedded-engine-one-way", "embedded_engine/mocks.py", "import embedded_engine.engine"),
]


def lint_imports(where: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages under ``where`` (its pyproject.toml), no cache left behind."""
    args = [arg for c in contracts for arg in ("--contract", c)]
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo", *args], cwd=where,
                          env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


def test_every_contract_holds_on_the_tree():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout, done.stdout[-2000:]


def test_the_wrong_imports_cover_every_contract():
    assert {contract for contract, _, _ in WRONG_IMPORTS} == set(CONTRACTS)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The three packages and pyproject.toml, without caches, to inject imports into."""
    copy = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize("contract, path, line", WRONG_IMPORTS, ids=[f"{c}:{p}" for c, p, _ in WRONG_IMPORTS])
def test_a_wrong_import_breaks_its_contract(tree_copy: Path, contract: str, path: str, line: str):
    target = tree_copy / path
    original = target.read_text()
    assert line not in original
    target.write_text(original + f"\n{line}  # deliberately wrong\n")
    try:
        done = lint_imports(tree_copy, contract)
    finally:
        target.write_text(original)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 kept, 1 broken" in done.stdout, done.stdout[-2000:]
    importer = path.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {line.split()[1]}" in done.stdout, done.stdout[-2000:]
    # The copy without the injection holds again: the failure came from this one line.
    assert lint_imports(tree_copy, contract).returncode == 0


def test_every_runtime_module_imports_without_the_pulumi_sdk():
    """A watcher host has no Pulumi SDK (it is the `pulumi` extra): all of repman/ imports without it,
    and without the Pulumi layer and the embedded engine beside it in a checkout."""
    probe = (
        "import importlib, pkgutil, sys\n"
        "for name in ('pulumi', 'pulumi_kubernetes', 'pulumi_docker', 'components', 'embedded_engine'):\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        "import repman\n"
        "assert repman.__file__.startswith(sys.argv[1]), repman.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(repman.__path__, 'repman.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(ROOT)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 100  # every module of the package, not an empty walk

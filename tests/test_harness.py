"""The test harness stays as clean as the code: shared support lives in ``testkit`` (tests and
benchmarks import it, never ``tests``), fixtures come from plugins, and the fast subset is split
by one rule (``testkit.markers``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+\(?([\w ,]*)|import\s+([\w., ]+))", re.MULTILINE)


def _imports(path: Path) -> list[str]:
    """Absolute imports of a file, read from its text. Not ``ast``: CPython 3.11.7's parser raised
    "AST constructor recursion depth mismatch" here once the suite had run a while (seen in CI)."""
    found: list[str] = []
    for module, names, plain in _IMPORT.findall(path.read_text()):
        if module:
            found.append(module)
            found += [f"{module}.{n.split(' as ')[0].strip()}" for n in names.split(",") if n.strip()]
        else:
            found += [n.split(" as ")[0].strip() for n in plain.split(",") if n.strip()]
    return found


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_nothing_imports_the_tests_folder():
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in _python_files("tests", "bench", "testkit")
                 for name in _imports(p) if name == "tests" or name.startswith("tests.")]
    assert offenders == []


def test_no_test_imports_another_test_module_or_a_fixture():
    from testkit import fixtures
    fixture_names = {name for name, value in vars(fixtures).items() if hasattr(value, "_pytestfixturefunction")
                     or type(value).__name__ == "FixtureFunctionDefinition"}
    assert {"testbed", "cluster_factory"} <= fixture_names           # the scan below knows what to look for
    offenders = []
    for path in _python_files("tests"):
        for name in _imports(path):
            last = name.rpartition(".")[2]
            if last.startswith("test_") or last == "conftest" or (
                    name.startswith("testkit.fixtures.") and last in fixture_names):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_tests_and_testkit_never_reach_into_bench_through_sys_path():
    """Support both need lives in testkit; a test that imports a benchmark's module by editing
    sys.path hides a second copy of a helper (it happened with a private sshd)."""
    offenders = [str(p.relative_to(ROOT)) for p in _python_files("tests", "testkit")
                 if "sys.path" in p.read_text() and p.name != "test_harness.py"]
    assert offenders == []


def test_the_scan_sees_an_offending_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from tests.test_runner import _cfg\nimport tests.conftest\n")
    assert {"tests.test_runner._cfg", "tests.conftest"} <= set(_imports(bad))


def test_the_fast_subset_keeps_table_tests_and_drops_real_servers():
    """One collection of a pure module and a real-server module, split by the rule."""
    def collected(marker: str) -> set[str]:
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "-m", marker, "tests/test_facts.py", "tests/test_switchover.py"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        return {line.split("::")[0] for line in out.stdout.splitlines() if "::" in line}

    assert collected("not slow") == {"tests/test_facts.py"}
    assert collected("slow") == {"tests/test_switchover.py"}

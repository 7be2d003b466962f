"""The embedded engine's protocol with a dynamic provider, seen through a recording stand-in.

Which calls, in which order, with what types: ``check`` with the old inputs before
``diff``, olds through protobuf (floats), create-before-delete unless the provider or
the resource asks for delete-before-replace, a preview that calls only check/diff and
writes nothing, and protect refusing a replace. The real providers run through the same
engine in tests/test_embedded_engine.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from embedded_engine.engine import Engine
from embedded_engine.errors import EngineError
from repman.errors import RepmanError
from testkit.deployment import check_deployment

PROGRAM = '''
import json, os
import pulumi
from testkit.standins.recording_provider import Recorded

params = json.loads(os.environ["REC_PARAMS"])
parent = pulumi.ComponentResource("test:index:Group", "group")
props = {**params["props"], "creds": {"user": "u", "password": pulumi.Output.secret("nested-secret-pw")}}
made = Recorded("rec", props, pulumi.ResourceOptions(parent=parent, protect=params.get("protect", False),
                                                    additional_secret_outputs=["made"]))
parent.register_outputs({})
pulumi.export("made", made.made)
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: repman\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(
        "config:\n  repman:db-servers-credential: a:pw-a\n  repman:replication-credential: r:pw-r\n"
        f"  repman:prov-state-dir: {tmp_path / 'state'}\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    return tmp_path


def run(project: Path, monkeypatch: pytest.MonkeyPatch, preview: bool = False, protect: bool = False,
        **props) -> tuple[Engine, list[dict]]:
    log = project / "calls.jsonl"
    log.write_text("")
    base = {"log": str(log), "key": "a", "value": 1, "dbr": False}
    monkeypatch.setenv("REC_PARAMS", json.dumps({"props": {**base, **props}, "protect": protect}))
    engine = Engine(project, "t", lambda m: None, preview=preview)
    engine.result = engine.up()
    return engine, [json.loads(line) for line in log.read_text().splitlines()]


def ops(calls: list[dict]) -> list[str]:
    return [c["op"] for c in calls]


def test_check_before_diff_with_old_inputs_and_float_olds(project, monkeypatch):
    engine, calls = run(project, monkeypatch)
    assert ops(calls) == ["check", "create"] and calls[0]["olds"] == {}
    assert calls[1]["env_config"] is False        # the config (credentials) is not in os.environ
    state = json.loads(engine.state.path.read_text())
    rec = next(r for r in state["resources"] if r["name"] == "rec")
    assert "nested-secret-pw" not in engine.state.path.read_text()     # a secret nested in an input too
    assert "creds" not in rec["inputs"] and "creds" not in rec["outputs"]
    assert rec["urn"] == "urn:pulumi:t::repman::test:index:Group$pulumi-python:dynamic/test:Recorded::rec"

    _, calls = run(project, monkeypatch, value=2)
    assert ops(calls) == ["check", "diff", "update"]
    assert calls[0]["olds"]["value"] == 1 and calls[0]["olds"]["key"] == "a"     # the old inputs
    assert calls[1]["olds_types"]["value"] == "float"                           # through protobuf
    assert calls[2]["olds_types"]["value"] == "float"

    _, calls = run(project, monkeypatch, value=2)
    assert ops(calls) == ["check", "diff"]


def test_replace_orders_and_preview_touches_nothing(project, monkeypatch):
    run(project, monkeypatch)
    _, calls = run(project, monkeypatch, key="b")                       # create-before-delete by default
    assert [(c["op"], c.get("key")) for c in calls if c["op"] in ("create", "delete")] == [
        ("create", "b"), ("delete", "a")]
    _, calls = run(project, monkeypatch, key="c", dbr=True)             # the provider asks delete-first
    assert [(c["op"], c.get("key")) for c in calls if c["op"] in ("create", "delete")] == [
        ("delete", "b"), ("create", "c")]

    state_file = project / "state" / "embedded-engine.t.json"
    before = hashlib.sha256(state_file.read_bytes()).hexdigest()
    engine, calls = run(project, monkeypatch, preview=True, key="d", value=5)
    assert ops(calls) == ["check", "diff"]
    assert [s.line().split()[:2] for s in engine.plan] == [["-/+", "rec"]]
    assert hashlib.sha256(state_file.read_bytes()).hexdigest() == before


def test_protected_resource_is_not_replaced(project, monkeypatch):
    run(project, monkeypatch, protect=True)
    with pytest.raises(RepmanError, match="refusing to replace protected resource rec"):
        run(project, monkeypatch, protect=True, key="z")
    engine = Engine(project, "t", lambda m: None)
    with pytest.raises(EngineError, match="refusing to delete protected resource rec"):
        engine.down()


def _cli_on_a_terminal(project: Path, answer: str, *args: str) -> tuple[int, str]:
    """``up`` with a pseudo-terminal as stdin, answering the confirmation prompt."""
    import os
    import pty
    import subprocess
    import sys

    log = project / "calls.jsonl"
    log.write_text("")
    env = dict(os.environ, REC_PARAMS=json.dumps({"props": {"log": str(log), "key": "a", "value": 1, "dbr": False}}),
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "embedded_engine", "up", "--stack", "t",
                                 "--project-dir", str(project), *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, text=True)
        os.write(master, f"{answer}\n".encode())
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    return proc.returncode, out


def test_up_on_a_terminal_asks_and_applies_only_on_yes(project):
    code, out = _cli_on_a_terminal(project, "no")
    assert code != 0 and "Do you want to perform this update?" in out and "update cancelled" in out
    assert "+   rec" in out
    assert ops([json.loads(x) for x in (project / "calls.jsonl").read_text().splitlines()]) == ["check"]
    assert not (project / "state" / "embedded-engine.t.json").exists()
    code, out = _cli_on_a_terminal(project, "yes")
    assert code == 0, out
    assert ops([json.loads(x) for x in (project / "calls.jsonl").read_text().splitlines()]) == [
        "check", "check", "create"]                       # the plan, then the apply


def test_secret_outputs_are_sealed_in_state_and_open_for_the_next_run(project, monkeypatch):
    engine, _ = run(project, monkeypatch, value=7)
    assert engine.result["outputs"]["made"] == "a:7" and "made" in engine.result["secret_outputs"]
    text = engine.state.path.read_text()
    assert "a:7" not in text and "__sealed_aes_gcm" in text
    again, calls = run(project, monkeypatch, value=7)
    assert ops(calls) == ["check", "diff"] and "made" in calls[1]["olds_types"]   # opened for the provider
    assert again.result["outputs"]["made"] == "a:7"                               # and for the program
    # Another credential: the sealed value no longer opens and reads as absent (a changed secret).
    stack_file = project / "stacks" / "Pulumi.t.yaml"
    stack_file.write_text(stack_file.read_text().replace("a:pw-a", "a:pw-rotated"))
    _, calls = run(project, monkeypatch, value=7)
    assert "made" not in calls[1]["olds_types"]


def test_export_is_a_pulumi_deployment_with_secrets_as_pulumi_secrets(project, monkeypatch):
    engine, _ = run(project, monkeypatch, value=3)
    doc = engine.export()
    resources = check_deployment(doc)
    rec = next(r for u, r in resources.items() if u.endswith("::rec"))
    assert rec["parent"].endswith("test:index:Group::group") and rec["additionalSecretOutputs"] == ["made"]
    assert rec["outputs"]["made"] == {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                                      "plaintext": '"a:3"'}
    assert rec["inputs"]["value"] == 3 and "creds" not in rec["inputs"]
    text = json.dumps(doc)
    assert "nested-secret-pw" not in text and "__sealed" not in text


def test_state_from_before_whole_chain_urns_is_adopted_not_recreated(project, monkeypatch):
    engine, _ = run(project, monkeypatch)
    path = engine.state.path
    doc = json.loads(path.read_text())
    for res in doc["resources"]:        # as version 1 wrote them: the parent's last type only, no inputs
        res["urn"] = res["urn"].replace("test:index:Group$pulumi-python", "pulumi-python")
        for key in ("inputs", "secret_outputs", "parent", "dependencies", "protect"):
            res.pop(key, None)
    doc["version"] = 1
    path.write_text(json.dumps(doc))
    _, calls = run(project, monkeypatch)
    assert ops(calls) == ["check", "diff"]                  # no create, no delete
    urns = [r["urn"] for r in json.loads(path.read_text())["resources"]]
    assert any(u.endswith("test:index:Group$pulumi-python:dynamic/test:Recorded::rec") for u in urns)
    assert len(urns) == len(set(urns)) == 2

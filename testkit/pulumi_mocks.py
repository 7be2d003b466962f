"""The one Pulumi mock recorder: run a program (or a component) under Pulumi's mocks, keep every registration.

The graph, backend and proxy tests all need the same thing: each registered resource with its
inputs (raw, plain and which keys were secret), the options it was registered with (parent,
ignoreChanges, dependencies), and the stack outputs with their secretness. What a provider
"reports back" differs per test, so the recorder takes an ``outputs`` rule; the default fills
what the Kubernetes, Docker and dynamic providers of ``__main__.py`` would report.
"""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config, mocks, rpc, settings

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "__main__.py")
KUBE_PASSWORDS = ("kube-admin-pw", "kube-repl-pw")   # the kube stack's credentials, replaced for the tests
KUBE_SECRET_CONFIG = {
    "repman:db-servers-credential": f"repman:{KUBE_PASSWORDS[0]}",
    "repman:replication-credential": f"repl:{KUBE_PASSWORDS[1]}",
}

# (type, name, inputs with top-level secrets unwrapped, inputs fully unwrapped) -> provider outputs
OutputRule = Callable[[str, str, dict[str, Any], dict[str, Any]], dict[str, Any]]


def is_secret(value: Any) -> bool:
    """A secret as the mocks see it: a wrapper dict with Pulumi's secret signature."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    """Inputs as plain data (secret wrappers removed, 3.0 -> 3)."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string reachable without crossing a secret wrapper (what must never hold a password)."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plain_strings(v)


def program_outputs(typ: str, name: str, top: dict[str, Any], deep: dict[str, Any]) -> dict[str, Any]:
    """What the providers of ``__main__.py``'s backends report: inputs plus generated names and ids."""
    outs = deep
    if typ.startswith("kubernetes:"):
        metadata = outs.setdefault("metadata", {})
        metadata.setdefault("name", f"{name}-a1b2c3d4")
    if typ.startswith("docker:"):
        outs.setdefault("name", name)
        if typ.endswith(":RemoteImage"):
            outs.setdefault("imageId", f"sha256:mock-{outs['name']}")
    if typ.startswith("pulumi-python:dynamic"):
        for key in ("address", "instance", "path"):   # what a real provider reports back
            if outs.get(key) is None:
                outs[key] = f"{name}-{key}"
    return outs


class Recorder(mocks.Mocks):
    """Stands in for every provider and records each registration.

    ``registered`` holds dicts: ``type``, ``name``, ``inputs`` (as sent, secrets wrapped),
    ``plain`` (top-level secrets unwrapped) and ``secret`` (the input keys that were secret).
    """

    def __init__(self, outputs: OutputRule = program_outputs) -> None:
        self.registered: list[dict[str, Any]] = []
        self._outputs = outputs

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
        raw = dict(args.inputs)
        top = {k: rpc.unwrap_rpc_secret(v) for k, v in raw.items()}
        self.registered.append({"type": args.typ, "name": args.name, "inputs": raw, "plain": top,
                                "secret": {k for k, v in raw.items() if is_secret(v)}})
        outs = self._outputs(args.typ, args.name, dict(top), unwrap(raw))
        return (f"{args.name}-id" if args.custom else ""), outs

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, None]:
        return {}, None

    def of_type(self, suffix: str) -> list[dict[str, Any]]:
        return [r for r in self.registered if r["type"].endswith(suffix)]


class RecordingMonitor(mocks.MockMonitor):
    """Also records the parent, ignoreChanges and dependencies of each registration (by name)."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.options: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        self.options[request.name] = {
            "parent": request.parent.rsplit("::", 1)[-1] if request.parent else "",
            "ignore_changes": list(request.ignoreChanges),
            "depends_on": [d.rsplit("::", 1)[-1] for d in request.dependencies],
        }
        return super().RegisterResource(request)

    @property
    def parents(self) -> dict[str, str]:
        return {name: o["parent"] for name, o in self.options.items()}

    @property
    def deps(self) -> dict[str, list[str]]:
        return {name: sorted(o["depends_on"]) for name, o in self.options.items()}


@dataclass
class Program:
    """One run of ``__main__.py`` under mocks: registrations, options, outputs and secret output keys."""

    recorder: Recorder
    monitor: RecordingMonitor
    outputs: dict[str, Any]
    secret: set[str]

    def of_type(self, suffix: str) -> list[dict[str, Any]]:
        return self.recorder.of_type(suffix)

    def one(self, suffix: str, name: str | None = None) -> dict[str, Any]:
        found = [r for r in self.of_type(suffix) if name is None or r["name"] == name]
        assert len(found) == 1, (suffix, name, [r["name"] for r in self.of_type(suffix)])
        return found[0]


def engine_config(config: dict[str, Any]) -> str:
    """PULUMI_CONFIG as the engine passes it: lists and dicts as JSON, booleans lower-case."""
    return json.dumps({k: json.dumps(v) if isinstance(v, (list, dict)) else str(v).lower() if isinstance(v, bool)
                       else str(v) for k, v in config.items()})


def run_program(monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], stack: str = "backend-test",
                outputs: OutputRule = program_outputs) -> Program:
    """``__main__.py`` with ``config`` in PULUMI_CONFIG, as the engine runs it."""
    monkeypatch.setenv("PULUMI_CONFIG", engine_config(config))
    runtime_config.set_all_config({}, [])
    recorder = Recorder(outputs)
    monitor = RecordingMonitor(recorder)
    settings.reset_options(project="repman", stack=stack, preview=False)
    pulumi.runtime.set_mocks(recorder, project="repman", stack=stack, preview=False, monitor=monitor)
    result: dict[str, Any] = {}

    async def collect() -> dict[str, Any]:
        for key, value in settings.get_root_resource().outputs.items():
            out = pulumi.Output.from_input(value)
            result[key] = (await out.future(), await out.is_secret())
        return result

    @pulumi.runtime.test
    def deploy():
        runpy.run_path(MAIN, run_name="__main__")
        return pulumi.Output.from_input(collect())

    deploy()
    return Program(recorder, monitor, {k: v for k, (v, _) in result.items()}, {k for k, (_, s) in result.items() if s})


def run_component(build: Callable[[], Any], stack: str, seen: Callable[[Any], pulumi.Output],
                  outputs: OutputRule = program_outputs) -> Recorder:
    """Register what ``build()`` makes under mocks; ``seen(made)`` returns the Output to wait for."""
    recorder = Recorder(outputs)
    settings.reset_options(project="repman", stack=stack, preview=False)
    pulumi.runtime.set_mocks(recorder, project="repman", stack=stack, preview=False)

    @pulumi.runtime.test
    def deploy():
        return seen(build())

    deploy()
    return recorder


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config`` of a committed ``stacks/Pulumi.<stack>.yaml``."""
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def manifests(program: Program) -> list[dict[str, Any]]:
    """Every Kubernetes object as the provider would send it (names filled where auto-named)."""
    out = []
    for r in program.recorder.registered:
        if not r["type"].startswith("kubernetes:"):
            continue
        doc = unwrap(r["inputs"])
        doc.setdefault("metadata", {}).setdefault("name", f"{r['name']}-a1b2c3d4")
        out.append(doc)
    return out

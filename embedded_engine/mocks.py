"""The embedded engine's side of ``pulumi.runtime.set_mocks``: a monitor that really applies.

Pulumi's mock monitor hands each registration to ``Mocks.new_resource``; ours
overrides ``RegisterResource`` to also know the URN and which inputs are secret,
then lets the ``Engine`` create/diff/update the resource for real. This module knows the
engine only as ``EngineHooks`` (what it calls), so the engine imports it and not the reverse.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any, Protocol

import pulumi
from pulumi.runtime import config as runtime_config, mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from embedded_engine.errors import EngineError
from embedded_engine.stack import config_env
from repman.errors import RepmanError


class EngineHooks(Protocol):
    """What the monitor needs of ``embedded_engine.engine.Engine``."""

    project_dir: Path
    project: str
    stack: str
    preview: bool
    config: dict[str, Any]
    errors: list[str]

    def urn(self, parent_urn: str, typ: str, name: str) -> str: ...

    def register(self, urn: str, typ: str, name: str, inputs: dict[str, Any], custom: bool,
                 secret_keys: set[str], protect: bool = False, delete_before_replace: bool = False,
                 secret_outputs: list[str] | None = None, parent: str = "",
                 dependencies: list[str] | None = None) -> tuple[str, dict[str, Any]]: ...


class _NoMocks(mocks.Mocks):
    """Never called: the monitor below applies resources itself."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict]:
        raise AssertionError("EngineMonitor handles every registration")

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class EngineMonitor(mocks.MockMonitor):
    def __init__(self, engine: EngineHooks) -> None:
        super().__init__(_NoMocks())
        self.engine = engine

    def RegisterResource(self, request: Any) -> Any:
        urn = self.engine.urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        raw = rpc.deserialize_properties(request.object, keep_unknowns=self.engine.preview)
        secret_keys = {k for k, v in raw.items() if _holds_secret(v)}
        inputs = _unwrap(raw)
        id_, state = self.engine.register(
            urn, request.type, request.name, inputs, bool(request.custom), secret_keys,
            protect=bool(request.protect), delete_before_replace=bool(request.deleteBeforeReplace),
            secret_outputs=list(request.additionalSecretOutputs),
            parent=request.parent, dependencies=list(request.dependencies),
        )
        # As the engine answers: outputs the resource declares secret come back marked secret.
        marked = {k: (_as_secret(v) if k in request.additionalSecretOutputs and v is not None else v)
                  for k, v in state.items()}
        obj = _sync_await(rpc.serialize_properties(marked, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)


def _as_secret(value: Any) -> dict[str, Any]:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _holds_secret(value: Any) -> bool:
    """A secret anywhere inside (a dict of credentials): the whole input is kept out of state."""
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _unwrap(value: Any) -> Any:
    """Plain values, as the engine hands them to a provider that does not accept secrets."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


async def _resolve(outputs: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values, secret = {}, set()
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        values[key] = await out.future()
        if await out.is_secret():
            secret.add(key)
    return values, secret


def run_program(engine: EngineHooks) -> tuple[dict[str, Any], set[str]]:
    """Run ``__main__.py`` of the project; returns the stack outputs and which are secret."""
    env = config_env(engine.config)
    saved_cwd = os.getcwd()
    # The SDK's config store only: not PULUMI_CONFIG in os.environ, where every child process
    # (mariadb-install-db, haproxy -c, ssh...) would inherit the stack's credentials.
    runtime_config.set_all_config(json.loads(env), [])
    sys.path.insert(0, str(engine.project_dir))
    try:
        os.chdir(engine.project_dir)
        settings.reset_options(project=engine.project, stack=engine.stack, preview=engine.preview)
        mocks.set_mocks(_NoMocks(), project=engine.project, stack=engine.stack, preview=engine.preview,
                        monitor=EngineMonitor(engine))
        settings.SETTINGS.rpc_manager.clear()
        try:
            _sync_await(run_pulumi_func(
                lambda: runpy.run_path(str(engine.project_dir / "__main__.py"), run_name="__main__")))
        except pulumi.RunError as exc:
            raise RepmanError(str(exc)) from None
        except Exception:
            if engine.errors:
                raise EngineError(engine.errors[0]) from None
            raise
        if engine.errors:
            raise EngineError(engine.errors[0])
        root = settings.get_root_resource()
        return _sync_await(_resolve(dict(getattr(root, "outputs", {}) or {})))
    finally:
        os.chdir(saved_cwd)
        try:
            sys.path.remove(str(engine.project_dir))
        except ValueError:
            pass

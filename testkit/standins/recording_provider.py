"""A recording stand-in dynamic provider: it makes nothing, it writes down what the engine asked.

Used to test the embedded engine's protocol (which calls, in which order, with which
argument types) where a real resource would hide it. Not evidence of any HA behaviour.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult


def _log(props: dict[str, Any], op: str, **fields: Any) -> None:
    with open(str(props["log"]), "a") as fh:
        fh.write(json.dumps({"op": op, **fields}, default=repr) + "\n")


def _types(d: dict[str, Any]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in d.items() if k != "__provider"}


class RecordingProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        _log(news, "check", olds={k: v for k, v in olds.items() if k != "__provider"})
        return CheckResult(news, [])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        _log(news, "diff", id=id_, olds_types=_types(olds), olds_value=olds.get("value"))
        replaces = ["key"] if olds.get("key") != news.get("key") else []
        changes = bool(replaces) or olds.get("value") != news.get("value")
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=bool(news.get("dbr")))

    def create(self, props: dict[str, Any]) -> CreateResult:
        import os

        # What a child process started here would inherit (mariadb-install-db, ssh...).
        _log(props, "create", key=props["key"], env_config="PULUMI_CONFIG" in os.environ)
        return CreateResult(id_=f"rec-{props['key']}", outs={**props, "made": f"{props['key']}:{int(props['value'])}"})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _log(news, "update", id=id_, olds_types=_types(olds))
        return UpdateResult(outs={**news, "made": f"{news['key']}:{int(news['value'])}"})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        _log(props, "read", id=id_)
        return ReadResult(id_, props)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        _log(props, "delete", id=id_, key=props["key"])


class Recorded(pulumi.dynamic.Resource, module="test", name="Recorded"):
    made: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RecordingProvider(), name, {**props, "made": None}, opts)

"""The SDK's dynamic provider host started as the Pulumi CLI starts it, with a gRPC client for it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import grpc
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from repman.db import Credential

ROOT = Path(__file__).resolve().parent.parent


ADMIN = Credential("repman", "host-admin-pw")


REPL = Credential("repl", "host-repl-pw")


OSVC = Credential("osvc-admin", "osvc-api-pw")


CONFIG = {"repman:db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
          "repman:replication-credential": f"{REPL.user}:{REPL.password}",
          "repman:opensvc-credential": f"{OSVC.user}:{OSVC.password}"}


def struct(props: dict[str, Any]) -> Any:
    loop = asyncio.new_event_loop()       # a private loop: asyncio.run would unset the current one
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def plain(s: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(s))


class Host:
    """A started ``python -m pulumi.dynamic`` and a client stub on its port."""

    def __init__(self, cwd: Path) -> None:
        purelib = sysconfig.get_paths()["purelib"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
               "PYTHONPATH": purelib, "PULUMI_PROJECT": "repman"}
        self.proc = subprocess.Popen([sys.executable, "-S", "-u", "-m", "pulumi.dynamic"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().strip()     # the host prints its port first
        if not line.isdigit():
            self.proc.kill()
            raise AssertionError(f"provider host did not start: {line!r} {self.proc.stderr.read().decode()[-2000:]}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # -- the calls the engine makes, one resource at a time
    def check(self, urn: str, olds: dict, news: dict) -> dict:
        resp = self.stub.Check(provider_pb2.CheckRequest(urn=urn, olds=struct(olds), news=struct(news)))
        assert not resp.failures, resp.failures
        return plain(resp.inputs)

    def diff(self, urn: str, id_: str, olds: dict, news: dict) -> provider_pb2.DiffResponse:
        return self.stub.Diff(provider_pb2.DiffRequest(urn=urn, id=id_, olds=struct(olds), news=struct(news)))

    def create(self, urn: str, props: dict) -> tuple[str, dict]:
        resp = self.stub.Create(provider_pb2.CreateRequest(urn=urn, properties=struct(props)))
        return resp.id, plain(resp.properties)

    def read(self, urn: str, id_: str, props: dict) -> tuple[str, dict]:
        resp = self.stub.Read(provider_pb2.ReadRequest(urn=urn, id=id_, properties=struct(props)))
        return resp.id, plain(resp.properties)

    def update(self, urn: str, id_: str, olds: dict, news: dict) -> dict:
        resp = self.stub.Update(provider_pb2.UpdateRequest(urn=urn, id=id_, olds=struct(olds), news=struct(news)))
        return plain(resp.properties)

    def delete(self, urn: str, id_: str, props: dict) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=urn, id=id_, properties=struct(props)))


def urn(typ: str, name: str) -> str:
    return f"urn:pulumi:test::repman::repman:index:Cluster$pulumi-python:dynamic:Resource::{name}"

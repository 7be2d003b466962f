"""SshNode through the SDK's real provider host over gRPC, on a network-namespace "host" with sshd.

The SSH key reaches the provider through ``Configure`` (stack config), never as an input;
a real mariadbd is created over SSH; old outputs come back as floats and the update's
address keeps an integer port (it used to be ``10.x.x.x:3310.0``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.providers.ssh_node import SshNodeProvider
from repman.backends.onpremise import NodeState
from repman.backends.ssh import HostSession, SshAuth
from testkit.env import HAVE_MARIADB
from testkit.netns import NetnsLab, skip_reason
from testkit.provider_host import CONFIG, ROOT, Host, plain, struct, urn

_SKIP = skip_reason() or (None if HAVE_MARIADB else "mariadbd / mariadb-install-db not installed")
pytestmark = [pytest.mark.skipif(_SKIP is not None, reason=_SKIP or ""), pytest.mark.slow]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetnsLab]:
    with NetnsLab.create(tmp_path / "netns", count=1) as made:
        made.start_sshd(made.hosts[0])
        yield made


def test_ssh_node_crud_through_the_provider_host(lab: NetnsLab) -> None:
    root = Path(tempfile.mkdtemp(prefix="repman-hostssh-"))
    root.chmod(0o755)
    key = lab.make_client_key()
    host = Host(ROOT)
    try:
        config = {**CONFIG, "repman:onpremise-ssh-key": json.dumps({"file": str(key)})}
        host.stub.Configure(provider_pb2.ConfigureRequest(args=struct(config)))
        address = lab.hosts[0].address
        news = {"__provider": serialize_provider(SshNodeProvider()), "host": address, "node_name": "hs-db1",
                "server_id": 1, "port": 3310, "plan": "x1.tiny", "tags": ["gtidstrict", "row", "nodurable"],
                "base_dir": f"{root}/hs-db1", "admin_user": "repman", "admin_password": "hs-admin-pw",
                "ssh_user": "root", "ssh_port": 22, "known_hosts": str(lab.known_hosts()),
                "strict_host_key_checking": True, "connect_timeout": 10, "service_user": "",
                "install_packages": False, "check_resources": False, "keep_data": False,
                "provider_version": "1"}
        u = urn("SshNode", "hs-db1")
        checked = host.check(u, {}, news)
        id_, outs = host.create(u, checked)
        try:
            assert outs["address"] == f"{address}:3310" and "hs-admin-pw" not in repr(outs)
            olds = plain(struct(outs))
            assert isinstance(olds["state"]["port"], float)
            assert host.diff(u, id_, olds, checked).changes == provider_pb2.DiffResponse.DIFF_NONE
            _, read = host.read(u, id_, outs)
            assert read["observed"]["running"] is True
            assert host.diff(u, id_, read, checked).changes == provider_pb2.DiffResponse.DIFF_NONE

            # A hand edit on the host: read records it, diff (pure) then asks for the update.
            auth = SshAuth(user="root", private_key=key.read_text(), known_hosts=str(lab.known_hosts()))
            state = NodeState(**{k: (int(v) if isinstance(v, float) else v) for k, v in outs["state"].items()})
            with HostSession(address, auth) as session:
                session.run("edit", f"echo '# edited' >> {state.base_dir}/my.cnf")
            _, read = host.read(u, id_, outs)
            assert host.diff(u, id_, read, checked).changes == provider_pb2.DiffResponse.DIFF_SOME
            outs = host.update(u, id_, read, checked)
            assert outs["address"] == f"{address}:3310"               # not "...:3310.0"
            with HostSession(address, auth) as session:
                assert "# edited" not in session.read_file("check", f"{state.base_dir}/my.cnf")
        finally:
            host.delete(u, id_, outs)
    finally:
        host.close()
        shutil.rmtree(root, ignore_errors=True)

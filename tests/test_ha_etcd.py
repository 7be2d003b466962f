"""The watcher's etcd client against real etcd-server 3.4 (one node, and three with a lost quorum)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization

from repman.tls import ensure_ca, ensure_server_certificates, issue_server_certificate
from repman.watcher.ha.etcd import (
    EtcdClient,
    EtcdError,
    EtcdUnavailable,
    TlsFiles,
    compare_lease,
    compare_mod,
    compare_value,
    op_put,
    prefix_end,
)
from testkit.polling import wait_until


def test_prefix_end() -> None:
    assert prefix_end(b"/repman/") == b"/repman0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff") == b"\0"


def test_kv_txn_and_prefix(etcd_factory) -> None:
    client = etcd_factory(1).client()
    assert client.get(b"/r/c1/leader") is None
    assert client.create(b"/r/c1/leader", b"w1") is True
    assert client.create(b"/r/c1/leader", b"w2") is False          # the second taker is refused
    kv = client.get(b"/r/c1/leader")
    assert kv is not None and kv.value == b"w1"
    client.put(b"/r/c2/leader", b"w2")
    client.put(b"/rx", b"outside")
    assert [k.key for k in client.get_prefix(b"/r/")] == [b"/r/c1/leader", b"/r/c2/leader"]
    # compare on mod_revision: a stale read-modify-write is refused
    ok, _ = client.txn([compare_mod(b"/r/c1/leader", kv.mod_revision)], [op_put(b"/r/c1/leader", b"w3")])
    assert ok
    ok, _ = client.txn([compare_mod(b"/r/c1/leader", kv.mod_revision)], [op_put(b"/r/c1/leader", b"w4")])
    assert not ok
    assert client.get(b"/r/c1/leader").value == b"w3"
    assert client.delete(b"/r/c1/leader") == 1


def test_lease_expiry_frees_the_key(etcd_factory) -> None:
    client = etcd_factory(1).client()
    lease = client.grant(2)
    assert client.create(b"/r/c1/leader", b"w1", lease)
    assert client.get(b"/r/c1/leader").lease == lease
    ok, _ = client.txn([compare_value(b"/r/c1/leader", b"w1"), compare_lease(b"/r/c1/leader", lease)],
                       [op_put(b"/r/c1/state", b"written by the holder")])
    assert ok
    ok, _ = client.txn([compare_lease(b"/r/c1/leader", lease + 1)], [op_put(b"/r/c1/state", b"late write")])
    assert not ok                                                    # a deposed leader's write is refused
    assert client.keepalive(lease) == 2
    started = time.monotonic()
    wait_until(lambda: client.get(b"/r/c1/leader") is None, 10, "the lease to expire")
    assert time.monotonic() - started < 4
    assert client.keepalive(lease) == 0                              # gone: the holder must know it
    assert client.create(b"/r/c1/leader", b"w2", client.grant(2))    # another watcher takes it
    assert client.get(b"/r/c1/state").value == b"written by the holder"


def test_stopped_etcd_is_unavailable_quickly(etcd_factory) -> None:
    etcd = etcd_factory(1)
    client = etcd.client(timeout=0.5)
    client.put(b"/k", b"v")
    etcd.stop()
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable, match="etcd unreachable"):
        client.get(b"/k")
    assert time.monotonic() - started < 2


def test_three_nodes_quorum_lost_and_back(etcd_factory) -> None:
    etcd = etcd_factory(3)
    client = EtcdClient(etcd.endpoints, timeout=1.0)
    lease = client.grant(3)
    client.put(b"/k", b"v", lease)
    etcd.kill(etcd.members[0])                                       # one of three: still a quorum
    assert wait_until(lambda: _answers(client), 10, "a read with one member of three down")
    assert client.keepalive(lease) == 3
    etcd.stop(etcd.members[1])                                       # two of three: no quorum
    with pytest.raises(EtcdUnavailable):
        client.get(b"/k")
    # A leader left alone steps down after an election timeout (1 s here): renewals then fail too.
    assert wait_until(lambda: not _renews(client, lease), 5, "lease renewals to fail without a quorum")
    etcd.start()                                                     # quorum back
    assert wait_until(lambda: _answers(client), 20, "reads after the quorum is back")


def _renews(client: EtcdClient, lease: int) -> bool:
    try:
        return client.keepalive(lease) > 0
    except EtcdUnavailable:
        return False


def _answers(client: EtcdClient) -> bool:
    try:
        return client.get(b"/k") is not None
    except EtcdUnavailable:
        return False


def test_user_password_auth(etcd_factory) -> None:
    etcd = etcd_factory(1)
    admin = etcd.client()
    admin.call("auth/role/add", {"name": "root"})
    admin.call("auth/user/add", {"name": "root", "password": "rootpw"})
    admin.call("auth/user/grant", {"user": "root", "role": "root"})
    admin.call("auth/enable", {})
    with pytest.raises(EtcdError, match="permission denied|user name is empty|token"):
        EtcdClient(etcd.endpoints).put(b"/k", b"anonymous")
    with pytest.raises(EtcdError, match="authentication of user 'root' refused"):
        EtcdClient(etcd.endpoints, user="root", password="wrong").put(b"/k", b"v")
    client = EtcdClient(etcd.endpoints, user="root", password="rootpw")
    client.put(b"/k", b"v")
    assert client.get(b"/k").value == b"v"


def test_tls_with_a_client_certificate(etcd_factory, tmp_path) -> None:
    tls = tmp_path / "tls"
    ensure_server_certificates(tls, ["127.0.0.1"], ca_dir=tmp_path / "ca")
    ca_cert, ca_key = ensure_ca(tmp_path / "ca")
    cert, key = issue_server_certificate(ca_cert, ca_key, ["repman-watcher"])
    (tls / "client-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tls / "client-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    etcd = etcd_factory(1, tls_dir=tls)
    files = TlsFiles(str(tls / "ca.pem"), str(tls / "client-cert.pem"), str(tls / "client-key.pem"))
    client = EtcdClient(etcd.endpoints, tls=files)
    assert client.endpoints[0].startswith("https://")
    client.put(b"/k", b"over tls")
    assert client.get(b"/k").value == b"over tls"
    with pytest.raises(EtcdUnavailable):                      # no client certificate: the handshake fails
        EtcdClient(etcd.endpoints, tls=TlsFiles(str(tls / "ca.pem")), timeout=0.5).get(b"/k")

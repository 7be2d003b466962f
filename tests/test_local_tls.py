"""The ssl tag's certificates: one cluster CA signs every node, and mariadbd serves TLS with them."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from repman.local.node import LocalNodeSpec, create_node, delete_node
from repman.local.ports import free_port_block
from repman.local.testbed import ADMIN
from repman.tls import ensure_server_certificates
from testkit.env import needs_mariadb


def _verify(cert_path: Path, ca_path: Path) -> None:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def test_nodes_created_in_parallel_share_one_cluster_ca(tmp_path):
    ca_dir = tmp_path / "ca"
    dirs = [tmp_path / f"db{i}" / "ssl" for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda d: ensure_server_certificates(d, ["127.0.0.1"], ca_dir=ca_dir), dirs))
    ca_pem = (ca_dir / "ca.pem").read_bytes()
    for d in dirs:
        assert (d / "ca.pem").read_bytes() == ca_pem
        _verify(d / "server-cert.pem", ca_dir / "ca.pem")
        assert (d / "server-key.pem").stat().st_mode & 0o777 == 0o600
    assert (ca_dir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    before = (dirs[0] / "server-cert.pem").read_bytes()
    ensure_server_certificates(dirs[0], ["127.0.0.1"], ca_dir=ca_dir)  # kept, not re-issued
    assert (dirs[0] / "server-cert.pem").read_bytes() == before


@needs_mariadb
def test_ssl_node_serves_tls_verified_by_the_cluster_ca(tmp_path):
    spec = LocalNodeSpec(base_dir=str(tmp_path / "n"), server_id=5, port=free_port_block(1), plan="x1.tiny",
                         tags=["ssl", "row"], admin_user=ADMIN.user, admin_password=ADMIN.password,
                         ca_dir=str(tmp_path / "ca"))
    try:
        create_node(spec)
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca" / "ca.pem"))
        conn = pymysql.connect(host=spec.host, port=spec.port, user=ADMIN.user, password=ADMIN.password, ssl=ctx)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
                version = cur.fetchone()[1]
        finally:
            conn.close()
    finally:
        delete_node(spec, keep_data=False)
    assert version.startswith("TLS")


def test_without_a_cluster_ca_no_ca_key_is_written(tmp_path):
    ensure_server_certificates(tmp_path / "ssl", ["127.0.0.1"])
    assert sorted(p.name for p in (tmp_path / "ssl").iterdir()) == ["ca.pem", "server-cert.pem", "server-key.pem"]
    _verify(tmp_path / "ssl" / "server-cert.pem", tmp_path / "ssl" / "ca.pem")

"""A cluster CA and server certificates for the ``ssl`` tag, made with ``cryptography``.

One CA per cluster signs every node's certificate, so a client (or a replica with
``MASTER_SSL_VERIFY_SERVER_CERT``) trusts the whole cluster with one ``ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))
    path.chmod(0o600)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Nodes are created in parallel: one of them makes the CA, the others wait for it."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _new_ca(days: int, common_name: str = "repman cluster CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def ensure_ca(ca_dir: Path, days: int = 3650) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the cluster CA from ``ca_dir``, creating it the first time."""
    with _locked(ca_dir):
        cert_path, key_path = ca_dir / CA_CERT, ca_dir / CA_KEY
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cert, key
        cert, key = _new_ca(days)
        _write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert, key


def ensure_server_certificates(directory: Path, hosts: list[str], days: int = 825,
                               ca_dir: Path | None = None) -> None:
    """Write ca.pem, server-cert.pem, server-key.pem once; existing files are kept.

    With ``ca_dir`` the certificate is signed by that (shared) cluster CA; without,
    by a throw-away CA whose key is never written (only its ``ca.pem``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "server-cert.pem").exists():
        return
    ca_cert, ca_key = ensure_ca(ca_dir) if ca_dir is not None else _new_ca(days)
    cert, key = issue_server_certificate(ca_cert, ca_key, hosts, days)
    if ca_dir is not None:
        shutil.copyfile(ca_dir / CA_CERT, directory / CA_CERT)
    else:
        (directory / CA_CERT).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "server-key.pem", key)
    (directory / "server-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def new_ca(days: int = 3650) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh CA for certificate rotation, named apart from the old one: while both are
    trusted (one bundle) a verifier must find each certificate's issuer by name."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
    return _new_ca(days, f"repman cluster CA {stamp}")


def issue_server_certificate(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: list[str],
                             days: int = 825) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for ``hosts`` (IP or DNS SANs; the first is the CN) signed by the CA."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key

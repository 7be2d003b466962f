"""``repman certificates rotate``: a new cluster CA and server certificates on a live cluster.

Three phases, each followed by ``FLUSH SSL`` on every server (MariaDB reloads its
certificates for new connections; open ones, replication included, stay up):
1. trust both: every ``ssl_ca`` file (and the watcher's ``db-servers-tls-ca-cert``) holds old + new CA;
2. new server certificates signed by the new CA (verifiable by everyone: both are trusted);
3. trust only the new CA.
Files are found from each server's own ``@@ssl_ca/@@ssl_cert/@@ssl_key``, so the command
runs where those paths are reachable (the local backend, or on the database host).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from repman.db import ServerAddress, execute, query, session
from repman.errors import ConfigError, RepmanError
from repman.tls import CA_CERT, CA_KEY, issue_server_certificate, new_ca
from repman.watcher.cluster_config import ClusterConfig

PEM = serialization.Encoding.PEM


@dataclass
class ServerFiles:
    address: ServerAddress
    ca: Path
    cert: Path
    key: Path


@dataclass
class CertRotation:
    servers: list[ServerAddress] = field(default_factory=list)
    new_ca_subject: str = ""


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _files(cfg: ClusterConfig) -> list[ServerFiles]:
    out = []
    for addr in cfg.servers:
        with session(addr, cfg.admin, timeout=5) as conn:
            row = query(conn, "SELECT @@GLOBAL.ssl_ca AS ca, @@GLOBAL.ssl_cert AS cert, @@GLOBAL.ssl_key AS k")[0]
        if not (row["ca"] and row["cert"] and row["k"]):
            raise RepmanError(f"{addr.url} serves no TLS (ssl_ca/ssl_cert/ssl_key unset): the ssl tag sets them")
        files = ServerFiles(addr, Path(row["ca"]), Path(row["cert"]), Path(row["k"]))
        for p in (files.ca, files.cert, files.key):
            if not os.access(p, os.W_OK):
                raise RepmanError(f"{addr.url}: {p} is not writable from here (run where the files are)")
        out.append(files)
    return out


def _flush(cfg: ClusterConfig, log: Callable[[str], None], phase: str) -> None:
    for addr in cfg.servers:
        with session(addr, cfg.admin, timeout=5) as conn:
            # LOCAL: a plain FLUSH is binlogged, and on a replica that is an errant transaction
            execute(conn, "FLUSH LOCAL SSL")
    log(f"{phase}: FLUSH SSL on {len(cfg.servers)} servers")


def rotate_certificates(cfg: ClusterConfig, ca_dir: Path, log: Callable[[str], None] = lambda m: None,
                        days: int = 825) -> CertRotation:
    """Replace the cluster CA (key and certificate in ``ca_dir``) and every server certificate."""
    old_ca_pem = (ca_dir / CA_CERT).read_bytes() if (ca_dir / CA_CERT).exists() else b""
    if not old_ca_pem or not (ca_dir / CA_KEY).exists():
        raise ConfigError("--ca-dir", f"{ca_dir} has no {CA_CERT} and {CA_KEY} (the cluster CA)")
    files = _files(cfg)
    watcher_ca = Path(ca) if (ca := cfg.optional_text("db-servers-tls-ca-cert")) else None
    ca_cert, ca_key = new_ca()
    new_pem = ca_cert.public_bytes(PEM)
    # 1. trust both CAs everywhere
    bundle = old_ca_pem.rstrip(b"\n") + b"\n" + new_pem
    for f in files:
        _write(f.ca, bundle, 0o644)
    if watcher_ca is not None:
        _write(watcher_ca, bundle, 0o644)
    _flush(cfg, log, "trust old and new CA")
    # 2. new server certificates (host names from the old certificates' SANs)
    for f in files:
        old = x509.load_pem_x509_certificate(f.cert.read_bytes())
        try:
            sans = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            hosts = [str(v) for v in sans.get_values_for_type(x509.IPAddress)] + sans.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            hosts = []
        cert, key = issue_server_certificate(ca_cert, ca_key, hosts or [f.address.host], days)
        _write(f.key, key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()), 0o600)
        _write(f.cert, cert.public_bytes(PEM), 0o644)
    _flush(cfg, log, "new server certificates")
    # 3. the new CA only; the CA directory gets the new key last (the old one is no longer needed)
    for f in files:
        _write(f.ca, new_pem, 0o644)
    if watcher_ca is not None:
        _write(watcher_ca, new_pem, 0o644)
    _flush(cfg, log, "trust the new CA only")
    _write(ca_dir / CA_KEY, ca_key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                 serialization.NoEncryption()), 0o600)
    _write(ca_dir / CA_CERT, new_pem, 0o644)
    return CertRotation([f.address for f in files], ca_cert.subject.rfc4514_string())

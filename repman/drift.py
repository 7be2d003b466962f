"""``repman config drift``: the declared configuration against what the servers run.

Declared = the my.cnf settings the stack's tags, plan and ``prov-db-*`` keys render
(the same renderer the backends use); running = ``SHOW GLOBAL VARIABLES`` of every
server of the watcher's cluster. Node-specific values (ids, ports, paths), plugin
loading and the role variables bootstrap and the watcher manage (``read_only``,
semi-sync) are not compared: they differ by design. A ``SET GLOBAL`` by hand, or a
dynamic change applied to some nodes only, shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from repman.db import Credential, ServerAddress, session
from repman.errors import ConfigError
from repman.mycnf import NodeContext, render_mycnf
from repman.spec import ClusterSpec, load_cluster_spec

#: settings that are per node, paths, or managed at run time: never drift
NOT_COMPARED = frozenset((
    "server_id", "port", "bind_address", "socket", "datadir", "pid_file", "log_error", "tmpdir", "report_host",
    "report_port", "user", "log_bin", "log_bin_index", "relay_log", "plugin_load_add", "read_only",
    "rpl_semi_sync_slave_enabled", "rpl_semi_sync_master_enabled", "ssl_ca", "ssl_cert", "ssl_key",
    "slow_query_log_file", "general_log_file", "sql_error_log_filename", "server_audit_file_path",
))
#: my.cnf option -> global variable, where they differ
VARIABLE_NAMES = {"transaction_isolation": "tx_isolation", "default_time_zone": "time_zone"}
_SIZES = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


@dataclass(frozen=True)
class Drift:
    server: str
    variable: str
    declared: str
    running: str | None

    def sentence(self) -> str:
        running = "missing" if self.running is None else repr(self.running)
        return f"{self.server} {self.variable}: declared {self.declared!r}, running {running}"


def declared_settings(spec: ClusterSpec) -> dict[str, str]:
    """The cluster-wide my.cnf settings of the stack, keyed by global variable name."""
    settings = spec.db_settings()
    ctx = NodeContext(server_id=1, port=3306, datadir="/d", socket="/s", run_dir="/r", tmp_dir="/t", ssl_dir="/ssl",
                      max_connections=int(settings.get("max_connections", 200)),
                      expire_logs_days=int(settings.get("expire_logs_days", 5)),
                      gtid_domain_id=int(settings.get("gtid_domain_id", 0)))
    out: dict[str, str] = {}
    for line in render_mycnf(spec.db_tags, spec.plan, ctx).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        name, value = (p.strip() for p in line.split("=", 1))
        if name not in NOT_COMPARED:
            out[VARIABLE_NAMES.get(name, name)] = value.strip("'")
    return out


def _number(text: str) -> float | None:
    text = text.strip().upper()
    factor = 1
    if text[-1:] in _SIZES and text[:-1].replace(".", "", 1).isdigit():
        factor, text = _SIZES[text[-1]], text[:-1]
    try:
        return float(text) * factor
    except ValueError:
        return None


def same_value(declared: str, running: str) -> bool:
    """my.cnf spelling against SHOW VARIABLES spelling (ON/1, sizes, flag lists)."""
    d, r = declared.strip().upper(), running.strip().upper()
    truth = {"ON": "1", "OFF": "0", "TRUE": "1", "FALSE": "0", "YES": "1", "NO": "0"}
    if truth.get(d, d) == truth.get(r, r):
        return True
    if "=" in d:                                      # optimizer_switch and friends: declared flags hold
        return set(d.split(",")) <= set(r.split(","))
    dn, rn = _number(d), _number(r)
    if dn is not None and rn is not None:
        return dn == rn
    if d == "UTC" and r in ("+00:00", "UTC"):
        return True
    return set(d.split(",")) <= set(r.split(","))


def running_variables(server: ServerAddress, admin: Credential) -> dict[str, str]:
    with session(server, admin) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES")
        rows = cur.fetchall()
    return {str(r["Variable_name"] if isinstance(r, dict) else r[0]).lower():
            str(r["Value"] if isinstance(r, dict) else r[1]) for r in rows}


def compare(server: str, declared: Mapping[str, str], running: Mapping[str, str]) -> list[Drift]:
    out = []
    for name, value in sorted(declared.items()):
        now = running.get(name.lower())
        if now is None or not same_value(value, now):
            out.append(Drift(server, name, value, now))
    return out


def load_stack_file(path: Path | str, passphrase: str | None) -> ClusterSpec:
    """A ``Pulumi.<stack>.yaml`` (``secure:`` values decrypted with the passphrase) as a ClusterSpec."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError("--stack", f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    config: dict[str, Any] = dict(doc.get("config") or {})
    secure = [k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"}]
    if secure:
        from repman.pulumisecrets import crypter_from_salt

        if not passphrase:
            raise ConfigError(secure[0], "is a Pulumi secret: set PULUMI_CONFIG_PASSPHRASE (or _FILE)")
        crypter = crypter_from_salt(passphrase, str(doc.get("encryptionsalt") or ""))
        for key in secure:
            config[key] = crypter.decrypt(config[key]["secure"])
    return load_cluster_spec(config, project_dir=path.parent.parent)

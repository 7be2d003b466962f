"""bandit over repman/: every finding is either fixed or explained here with its reason (issue 15).

A finding whose test id (for project-wide patterns) or (test id, file) pair is not
listed fails the test, with the new findings printed: fix it, or add it here with
an honest reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Project-wide patterns, accepted wherever they occur.
EXPLAINED_EVERYWHERE = {
    "B101": "asserts state invariants (type narrowing); no check of user input relies on them",
    "B110": "best-effort cleanup or logging paths (closing a socket, a log sink) where an error changes nothing",
    "B404": "subprocess is how the real tools (mariadbd, mariadb-binlog, haproxy, sysbench, nix) are run",
    "B603": "every call passes an argument list, never shell=True; arguments come from validated config",
    "B701": "jinja2 renders my.cnf / haproxy / proxysql / maxscale / opensvc config text, not HTML: HTML "
            "escaping would corrupt it; values are validated per key, and the dashboard uses autoescape=True",
}
# Findings explained for one file.
EXPLAINED_IN_FILE = {
    ("B104", "repman/api/server.py"): "compares the bind address with 0.0.0.0 to print a usable URL; binds nothing",
    ("B104", "repman/backends/container.py"): "mariadbd inside a pod listens on all pod interfaces, by design",
    ("B104", "repman/routing/haproxy_config.py"): "a proxy's default bind address for clients (a config key)",
    ("B104", "repman/routing/maxscale_config.py"): "a proxy's default bind address for clients (a config key)",
    ("B104", "repman/routing/proxysql_config.py"): "a proxy's default bind address for clients (a config key)",
    ("B105", "repman/api/server.py"): "'token_type': 'Bearer' is the OAuth token type name, not a secret",
    ("B105", "repman/pulumisecrets.py"): "error messages naming PULUMI_CONFIG_PASSPHRASE, not passwords",
    ("B107", "repman/db.py"): "unix-socket root login of a freshly initialised datadir has no password by design",
    ("B107", "repman/routing/consul.py"): "an empty Consul ACL token means 'no token', not a hard-coded secret",
    ("B108", "repman/backends/container.py"): "paths inside the container image's filesystem, not the host's /tmp",
    ("B108", "repman/backends/onpremise.py"): "a node's own tmpdir under its base_dir on the remote host",
    ("B108", "repman/backends/ssh_seed.py"): "the node's own tmp folder under its base_dir on the remote host",
    ("B310", "repman/routing/kube.py"): "the URL is the configured Kubernetes API (https), not user input",
    ("B607", "repman/lab/faults.py"): "the nemesis lab (tests and bench, as root) runs the system's iptables",
    ("B608", "repman/lab/writer.py"): "TABLE is the lab's own constant table name; row values are bind parameters",
    ("B112", "repman/watcher/fencing.py"): "entries are validated when the config loads; one that slips through "
                                           "fences nothing rather than stopping the failover",
    ("B310", "repman/plans.py"): "prov-service-plan-registry is an http(s) URL checked before opening, or a file",
    ("B105", "repman/cli.py"): "an empty passphrase means 'none given' (config import/drift then write no secret)",
    ("B608", "repman/initial_data.py"): "schema, table and column names come from the CSV file name and header and are "
                                        "backquoted; the row values go as bind parameters",
    ("B310", "repman/routing/http.py"): "the URL is a configured proxy/registry API base, not user input",
    ("B311", "repman/local/ports.py"): "random start of a free-port search for tests; not a secret",
    ("B324", "repman/password_hash.py"): "SHA1(SHA1(pw)) is MariaDB's mysql_native_password format; computing it "
                                          "client-side keeps the clear password out of binlogs (a stronger "
                                          "server plugin is a separate choice)",
    ("B507", "repman/backends/ssh.py"): "AutoAddPolicy only when onpremise-ssh-strict-host-key-checking is off "
                                         "(explicit opt-out); RejectPolicy otherwise",
    ("B601", "repman/backends/ssh.py"): "remote commands are built with shlex.quote for every value",
    ("B601", "repman/backends/ssh_seed.py"): "the streamed commands quote every value with shlex.quote (_q)",
    ("B310", "repman/alerts/channels.py"): "alert-slack-url is checked to be http(s) when the config loads",
    ("B105", "repman/api/openapi.py"): "the OpenAPI description of the login body's field named 'password'",
    ("B105", "repman/watcher/ha/etcd.py"): "an empty etcd auth token means 'not logged in yet', not a secret",
    ("B107", "repman/watcher/ha/etcd.py"): "an empty etcd password means 'no auth' (ha-etcd-password unset)",
    ("B608", "repman/routing/proxysql.py"): "ProxySQL's admin interface takes no bind parameters: integers are "
                                            "formatted as ints and every string goes through sql_text quoting",
}


@pytest.mark.skipif(shutil.which("bandit") is None and not (Path(sys.executable).parent / "bandit").exists(),
                    reason="bandit not installed (pip install -e '.[test]')")
def test_bandit_has_no_unexplained_finding():
    exe = shutil.which("bandit") or str(Path(sys.executable).parent / "bandit")
    done = subprocess.run([exe, "-r", "repman", "-q", "-f", "json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    report = json.loads(done.stdout)
    assert not report["errors"], report["errors"]
    unexplained = [
        f"{r['test_id']} {r['filename']}:{r['line_number']} {r['issue_text']}"
        for r in report["results"]
        if r["test_id"] not in EXPLAINED_EVERYWHERE and (r["test_id"], r["filename"]) not in EXPLAINED_IN_FILE
    ]
    assert unexplained == [], "\n".join(unexplained)

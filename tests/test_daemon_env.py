"""The environment detached daemons start with: an allow-list, so no credential can ride along."""

from __future__ import annotations

from repman.local.daemon_env import daemon_environment


def test_only_harmless_variables_reach_a_daemon():
    source = {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC",
              "PULUMI_CONFIG": '{"repman:db-servers-credential": "repman:pw"}',
              "PULUMI_CONFIG_PASSPHRASE": "pp", "AWS_SECRET_ACCESS_KEY": "k", "MYSQL_PWD": "pw",
              "REPMAN_DB_SERVERS_CREDENTIAL": "repman:pw", "SSH_AUTH_SOCK": "/tmp/agent"}
    env = daemon_environment({"PYTHONUNBUFFERED": "1"}, source=source)
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TZ": "UTC",
                   "PYTHONUNBUFFERED": "1"}


def test_a_daemon_gets_a_path_even_from_an_empty_environment():
    assert daemon_environment(source={})["PATH"].startswith("/usr/local/sbin")

"""Stack keys of the onpremise backend (SSH hosts), declared beside the backend that reads them.

``repman.spec`` assembles every backend's table into ``PROVISIONING_KEYS``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

ONPREMISE_KEYS = key_table(
    Key("onpremise-hosts", "strlist", [], "onpremise: SSH host (address) of each database node, in node order"),
    Key("onpremise-ssh-user", "str", "root", "onpremise: SSH login (sudo -n is used when not root)"),
    Key("onpremise-ssh-port", "int", 22, "onpremise: SSH port of the hosts", minimum=1, maximum=65535),
    Key("onpremise-ssh-key", "str", "", "onpremise: SSH private key text (or {file: PATH})", secret=True),
    Key("onpremise-ssh-password", "str", "", "onpremise: SSH password when no key is used", secret=True),
    Key("onpremise-known-hosts", "path", "~/.ssh/known_hosts", "onpremise: known_hosts file with the hosts' keys"),
    Key("onpremise-ssh-strict-host-key-checking", "bool", True,
        "onpremise: refuse hosts whose key is not in known_hosts"),
    Key("onpremise-ssh-timeout", "int", 10, "onpremise: SSH connect timeout (seconds)", minimum=1),
    Key("onpremise-base-dir", "str", "/var/lib/repman/{node}",
        "onpremise: node directory on the host ({cluster} and {node} are replaced)"),
    Key("onpremise-db-user", "str", "", "onpremise: account mariadbd runs as (default mysql, else root)"),
    Key("onpremise-install-packages", "bool", False,
        "onpremise: install MariaDB with the host's package manager when missing"),
    Key("onpremise-check-resources", "bool", True, "onpremise: refuse hosts with fewer cores/memory than the plan"),
)

"""Stack keys of the slapos backend, declared beside the backend that reads them.

``repman.spec`` assembles every backend's table into ``PROVISIONING_KEYS``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

SLAPOS_KEYS = key_table(
    Key("slapos-master-url", "str", "", "slapos: SlapOS master (or slapproxy) URL"),
    Key("slapos-key-file", "path", "", "slapos: client key for the master (https)"),
    Key("slapos-cert-file", "path", "", "slapos: client certificate for the master (https)"),
    Key("slapos-software-release", "str", "", "slapos: URL of the repman software release"),
    Key("slapos-software-type", "str", "default", "slapos: software type of the cluster instance"),
    Key("slapos-repman-computer-guid", "str", "", "slapos: computer of the root (repman) instance"),
    Key("slapos-computer-guids", "strlist", [], "slapos: computer of each database node (-sla-N-computer_guid)"),
    Key("slapos-databases", "strlist", [], "slapos: per-user databases as shared instances (db or db:user)"),
)

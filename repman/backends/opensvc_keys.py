"""Stack keys of the opensvc backend, declared beside the backend that reads them.

``repman.spec`` assembles every backend's table into ``PROVISIONING_KEYS``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

OPENSVC_KEYS = key_table(
    Key("opensvc-api-url", "str", "", "opensvc: cluster agent API URL (https://node:1215)"),
    Key("opensvc-credential", "credential", None, "opensvc: API user:password", secret=True),
    Key("opensvc-namespace", "str", "repman", "opensvc: namespace of the service objects"),
    Key("opensvc-ca-file", "path", "", "opensvc: CA bundle to verify the agent's certificate"),
    Key("opensvc-network", "str", "default", "opensvc: CNI network of the containers' ip#N sections"),
    Key("opensvc-nodes", "strlist", [], "opensvc: agent nodes the services may run on (empty: all)"),
)

"""Stack keys of the docker backend, declared here with the other backends' keys.

The backend's Pulumi side is ``components/backends/docker.py``; the key table stays
in the runtime package so that the Nix schema and the config importer need no Pulumi.
``repman.spec`` assembles every backend's table into ``PROVISIONING_KEYS``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

DOCKER_KEYS = key_table(
    Key("docker-network", "str", "", "docker: network name (default <cluster>-net)"),
    Key("docker-publish-host", "str", "127.0.0.1", "docker: host address node ports are published on"),
)

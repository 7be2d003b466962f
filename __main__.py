"""The repman Pulumi program: one MariaDB replication cluster from the stack's ``repman:`` config.

``pulumi up --stack local`` (inside ``nix develop``) or, without the Pulumi CLI,
``python -m embedded_engine up --stack local``.
"""

from pathlib import Path

import pulumi

from components.backends import get_backend
from components.cluster import Cluster, ClusterArgs
from components.stack_config import load_stack_spec
from repman.errors import RepmanError

spec = load_stack_spec(Path(__file__).resolve().parent)
try:
    backend = get_backend(spec)
except RepmanError as exc:  # e.g. a backend module missing from this version
    raise pulumi.RunError(str(exc)) from None
cluster = Cluster(spec.name, ClusterArgs(spec=spec, backend=backend))

for key, value in cluster.outputs.items():
    pulumi.export(key, value)

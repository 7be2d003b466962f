"""repman runtime: bootstrap, config rendering and the failover watcher.

This package must never import Pulumi: the watcher deploys on its own, and the
Pulumi layer (``components/``) calls into it, never the reverse.
"""

__version__ = "0.1.0"

"""Bootstrap from inside the nodes' network: wire replication, then (in Kubernetes) label the pods.

The deploying machine cannot always reach the nodes on the addresses they use
between themselves (pod DNS names, Docker container names), so the Kubernetes and
Docker backends run this as a one-shot Job/container (``python -m
repman.backends.container_bootstrap CONFIG``) with the watcher's config file and the
credentials in the environment. Safe to repeat: bootstrap keeps a live primary, and
pod labels are only patched where they differ.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

from repman.bootstrap import BootstrapRequest, BootstrapResult, bootstrap
from repman.errors import RepmanError
from repman.routing.base import Topology
from repman.routing.kube import KubeApi, KubeLabelRouter, KubeNames
from repman.topology import read_state
from repman.watcher.election import preferred_masters


def wait_reachable(request: BootstrapRequest, timeout: float) -> None:
    """Pods of a fresh StatefulSet come up one by one: wait for all of them."""
    deadline = time.monotonic() + timeout
    while True:
        down = [a for a in request.servers if not read_state(a, request.admin, timeout=3).reachable]
        if not down:
            return
        if time.monotonic() > deadline:
            raise RepmanError(f"{down[0].url} still unreachable after {timeout:.0f}s")
        time.sleep(2)


def run(config_path: str, cluster: str | None, namespace_names: KubeNames | None,
        api: KubeApi | None, timeout: float = 600) -> BootstrapResult:
    from repman.watcher.config import load_config

    cfg = load_config(config_path)
    name = cluster or next(iter(cfg.clusters))
    section = cfg.clusters[name]
    request = BootstrapRequest(
        servers=section.servers, admin=section.admin, replication=section.replication,
        preferred_master=next(iter(preferred_masters(section)), None), semisync=bool(section.get("semisync")),
        progress=lambda m: print(m, flush=True),
    )
    wait_reachable(request, timeout)
    result = bootstrap(request)
    if api is not None and namespace_names is not None:
        KubeLabelRouter(api, namespace_names).apply(Topology(
            cluster=name, primary=result.primary, replicas=tuple(result.replicas),
            servers=tuple(request.servers), reason="monitor"))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config_path = args[0] if args else os.environ.get("REPMAN_CONFIG", "")
    try:
        cluster = os.environ.get("REPMAN_CLUSTER") or None
        api = names = None
        if os.environ.get("KUBERNETES_SERVICE_HOST"):   # in a pod: also label the pods by role
            api = KubeApi.in_cluster()
            names = KubeNames(cluster or "", api.namespace)
        result = run(config_path, cluster, names, api)
    except RepmanError as exc:
        print(f"repman bootstrap: {exc}", file=sys.stderr)
        return 1
    print(f"primary {result.primary.url}; {len(result.actions)} changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

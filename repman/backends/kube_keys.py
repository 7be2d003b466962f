"""Stack keys of the kube backend (Kubernetes), declared beside the backend that reads them.

``repman.spec`` assembles every backend's table into ``PROVISIONING_KEYS``.
"""

from __future__ import annotations

from repman.keys import Key, key_table

KUBE_KEYS = key_table(
    Key("kube-namespace", "str", "default", "Kubernetes namespace of the cluster"),
    Key("kube-storage-class", "str", "", "kube: storage class of the data volumes (empty: cluster default)"),
    Key("kube-service-type", "enum", "ClusterIP", "kube: type of the -primary and -replicas Services",
        choices=("ClusterIP", "NodePort", "LoadBalancer")),
    Key("kube-watcher-image", "str", "repman:0.1.0",
        "deprecated: prov-watcher-image (used only when that one is left at its default)"),
)

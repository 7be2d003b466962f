"""Watcher high availability on etcd: several watchers share clusters, one leader acts per cluster.

``etcd`` is the client (the v3 JSON gateway), ``settings`` the ``ha:`` section of the watcher
file, ``leadership`` the lease and the leader keys that gate every action.
"""

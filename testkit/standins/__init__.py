"""Recording stand-ins for services that cannot run here (ProxySQL, MaxScale, Consul),
plus small helpers shared by the routing tests (a local HAProxy on a real cluster)."""

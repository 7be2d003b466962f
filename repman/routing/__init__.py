"""Traffic routing: proxies and registries that follow every topology change."""

"""The watcher's HTTP side: JSON API, HAProxy health checks and the dashboard."""

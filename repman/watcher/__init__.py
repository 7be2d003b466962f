"""The watcher: monitoring, failover, switchover and rejoin for many clusters."""

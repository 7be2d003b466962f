"""Backups, binlog archiving and point-in-time restore of a cluster (issue 11)."""

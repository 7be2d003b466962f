"""Processes on this host: the embedded default backend and the test harness."""

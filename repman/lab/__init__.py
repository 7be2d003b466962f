"""The nemesis lab: recording writers, fault injectors and the checker, shared by tests and bench.

Jepsen-style: clients record what the database acknowledged, faults are real
(kill -9, SIGSTOP, iptables partitions against real ``mariadbd``), and the
checker compares the record with the final data. No pytest import here: the
bench scripts use the same pieces as the tests.
"""

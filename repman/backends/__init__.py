"""Plain-Python runtime parts of the provisioning backends (no Pulumi here).

The Pulumi components and dynamic providers in ``components/`` call these; tests
call them directly against real servers (sshd, slapproxy, mariadbd) or recording
stand-ins of services that cannot run on a CI machine.
"""

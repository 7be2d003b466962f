"""Errors that reach users as one clear line, never a traceback."""


class RepmanError(Exception):
    """Base of every error repman reports to a user as a single line."""


class ConfigError(RepmanError):
    """Invalid configuration: the message names the key and the offending value."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class OperationRefused(RepmanError):
    """An HA operation refused before it changed anything (long trx, no candidate...)."""


class BootstrapError(RepmanError):
    """Bootstrap refused or failed (diverging data, unreachable server...)."""

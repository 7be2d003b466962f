"""The embedded engine's own error: which exit code a failure gets (1, not 2 for a bad config)."""

from __future__ import annotations

from repman.errors import RepmanError


class EngineError(RepmanError):
    """A resource operation failed; the message names the resource."""

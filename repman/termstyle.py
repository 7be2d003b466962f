"""Colour and screen control for the CLI, only where a person reads.

Why a rule of its own: a pipe, a file or a script must get plain text (no escape
codes to strip), and ``NO_COLOR`` (https://no-color.org) turns colour off for
people who do not want it, whatever the terminal.
"""

from __future__ import annotations

import os
from typing import TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}
# Server states and event severities -> colour: the ones an operator must see stand out.
STATE_COLOURS = {"Master": "green", "Slave": "green", "Failed": "red", "Suspect": "yellow", "Maintenance": "blue",
                 "Unconnected": "red", "Relay": "green", "SlaveErr": "red", "SlaveLate": "yellow"}
SEVERITY_COLOURS = {"info": "dim", "warning": "yellow", "error": "red"}


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal only, and never with NO_COLOR set (to any value)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str | None, on: bool) -> str:
    code = _CODES.get(colour or "")
    return f"\x1b[{code}m{text}\x1b[0m" if on and code else text


def clear_screen(stream: TextIO) -> None:
    """Home the cursor and clear, on a terminal only (a log file gets the frames one after another)."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        stream.write("\x1b[H\x1b[2J")

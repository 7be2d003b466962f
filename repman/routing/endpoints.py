"""``host`` or ``host:port`` entries of a servers list, with a default port from another key."""

from __future__ import annotations

from repman.db import ServerAddress


def endpoint(text: str, default_port: int, key: str) -> ServerAddress:
    text = text.strip()
    if text.startswith("[") or (text.count(":") == 1 and text.rsplit(":", 1)[1].isdigit()):
        return ServerAddress.parse(text, key)
    if ":" in text:                      # a bare IPv6 address
        return ServerAddress.parse(f"[{text}]:{default_port}", key)
    return ServerAddress.parse(f"{text}:{default_port}", key)

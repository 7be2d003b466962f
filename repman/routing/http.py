"""A small JSON-over-HTTP client for proxy and registry APIs (MaxScale, Consul).

Standard library only; every call has a timeout; transport failures become
``RoutingError`` and HTTP statuses are returned for the caller to judge.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from repman.routing.base import RoutingError


@dataclass(frozen=True)
class Response:
    status: int
    body: Any          # parsed JSON, raw text, or None when empty

    def error_detail(self) -> str:
        """The most useful line of an error answer (MaxScale's errors[].detail, or the text)."""
        body = self.body
        if isinstance(body, Mapping) and isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            return str(first.get("detail", first)) if isinstance(first, Mapping) else str(first)
        text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        return (text.strip().splitlines() or [""])[0][:200]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None,
            timeout: float = 2.0) -> Response:
    data = None if body is None else json.dumps(body, sort_keys=True).encode()
    req = urllib.request.Request(url, data=data, method=method)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, _parse(resp.read()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, _parse(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RoutingError(f"{method} {url}: {getattr(reason, 'strerror', None) or reason}") from None


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text

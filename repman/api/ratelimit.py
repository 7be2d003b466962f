"""Failed-login throttling: after N failures in a window, a client address or a user name
is refused (429) until the window has passed, so passwords cannot be guessed at speed."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginThrottle:
    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: now)."""
        if self.max_failures <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            waits = [self.window - (now - q[0]) for k in keys
                     if len(q := self._recent(k, now)) >= self.max_failures]
            if len(self._failures) > 10_000:  # never grow without bound under a spray of names
                for k in [k for k, q in self._failures.items() if not q]:
                    del self._failures[k]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

"""Whether an alert goes out, and to which channels.

Held back, in this order: no channel configured; an operator's mute; a blackout
window; the same text of the same kind within ``alert-dedup-window`` (an exact repeat
is dropped); any alert of the same kind within ``alert-min-interval`` (the next one
of that kind sent says how many were held back). Sending is synchronous: the watcher calls ``notify`` on its background
pool, so a slow SMTP server never delays a tick. ``send_test`` skips the gates.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from repman.alerts.channels import ChannelError, send_mail, send_webhook
from repman.alerts.settings import AlertSettings
from repman.alerts.silence import MuteStore, blackout_until


@dataclass
class Outcome:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)     # channel -> one-line reason (no secret)
    held_back: str = ""                                      # why nothing was sent, "" when it was


class Alerter:
    def __init__(self, settings: AlertSettings, log: Callable[[str], None] = lambda m: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.log = log
        self.clock = clock
        self.mutes = MuteStore(settings.state_dir)
        self._lock = threading.Lock()
        self._last_kind: dict[str, float] = {}
        self._last_text: dict[tuple[str, str], float] = {}
        self._held: Counter[str] = Counter()

    def _gate(self, kind: str, text: str, now: float) -> str:
        """Why this alert is held back now ("" to send it)."""
        s = self.settings
        if not s.channels:
            return "no alert channel configured"
        mute = self.mutes.current(now)
        if mute is not None:
            return f"muted until {_when(mute.until)}" + (f" by {mute.by}" if mute.by else "")
        end = blackout_until(s.blackout_cron, s.blackout_seconds, now)
        if end is not None:
            return f"blackout window until {_when(end)} (scheduler-alert-disable)"
        last = self._last_text.get((kind, text))
        if s.dedup_window > 0 and last is not None and now - last < s.dedup_window:
            return f"same alert sent {now - last:.0f}s ago (alert-dedup-window)"
        last = self._last_kind.get(kind)
        if s.min_interval > 0 and last is not None and now - last < s.min_interval:
            return f"a {kind} alert was sent {now - last:.0f}s ago (alert-min-interval)"
        return ""

    def notify(self, kind: str, text: str) -> Outcome:
        """Send ``text`` unless a gate holds it back; never raises."""
        now = self.clock()
        with self._lock:
            why = self._gate(kind, text, now)
            if why:
                if self.settings.channels:
                    if why.endswith("(alert-min-interval)"):    # an exact repeat (dedup) is not news
                        self._held[kind] += 1
                    self.log(f"alert not sent ({why}): {text}")
                return Outcome(held_back=why)
            self._last_kind[kind] = now
            self._last_text[(kind, text)] = now
            held = self._held.pop(kind, 0)
        body = text + (f" ({held} more alert{'s' if held > 1 else ''} of this kind held back)" if held else "")
        return self._send(body)

    def send_test(self, who: str) -> Outcome:
        """A test alert to every channel, whatever the gates say (``repman alert test``)."""
        return self._send(f"test alert requested by {who}: the channels of cluster {self.settings.cluster} work")

    def _send(self, text: str) -> Outcome:
        s = self.settings
        line = f"[repman] {s.cluster}: {text}"
        out = Outcome()
        for channel in s.channels:
            try:
                if channel == "webhook":
                    send_webhook(s, line)
                else:
                    send_mail(s, line[:120], line)
                out.sent.append(channel)
            except ChannelError as exc:
                out.failed[channel] = str(exc)
            except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others
                out.failed[channel] = f"{channel}: {type(exc).__name__}"
        if out.failed:
            self.log(f"alert channel failed: {'; '.join(out.failed.values())}")
        return out


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

"""A cluster's alert settings, read once from its validated keys (repman's key names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from repman.backup.settings import cron_expression
from repman.errors import ConfigError


class TypedKeys(Protocol):
    """What the settings read of a cluster's config (``ClusterConfig`` is one)."""

    name: str

    def text(self, name: str) -> str: ...
    def flag(self, name: str) -> bool: ...
    def integer(self, name: str) -> int: ...
    def seconds(self, name: str) -> float: ...


@dataclass(frozen=True)
class AlertSettings:
    cluster: str
    state_dir: Path
    webhook_url: str = field(default="", repr=False)     # a Slack webhook URL is a credential
    webhook_channel: str = ""
    webhook_user: str = ""
    mail_to: tuple[str, ...] = ()
    mail_from: str = "mrm@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_skip_verify: bool = False
    blackout_cron: str = ""                              # croniter expression; empty: no blackout windows
    blackout_seconds: float = 0.0
    dedup_window: float = 600.0
    min_interval: float = 0.0

    @property
    def channels(self) -> list[str]:
        return (["webhook"] if self.webhook_url else []) + (["mail"] if self.mail_to else [])

    @classmethod
    def from_config(cls, cfg: TypedKeys, state_dir: Path) -> AlertSettings:
        url = cfg.text("alert-slack-url")
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError("alert-slack-url", "expected an http:// or https:// URL")
        host, _, port_text = cfg.text("mail-smtp-addr").rpartition(":")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError("mail-smtp-addr", f"expected host:port, got {cfg.text('mail-smtp-addr')!r}")
        blackout = cfg.flag("scheduler-alert-disable")
        cron = cron_expression(cfg.text("scheduler-alert-disable-cron"), "scheduler-alert-disable-cron") \
            if blackout else ""
        return cls(
            cluster=cfg.name, state_dir=state_dir, webhook_url=url,
            webhook_channel=cfg.text("alert-slack-channel"), webhook_user=cfg.text("alert-slack-user"),
            mail_to=tuple(a.strip() for a in cfg.text("mail-to").split(",") if a.strip()),
            mail_from=cfg.text("mail-from"), smtp_host=host.strip("[]"), smtp_port=int(port_text),
            smtp_user=cfg.text("mail-smtp-user"), smtp_password=cfg.text("mail-smtp-password"),
            smtp_skip_verify=cfg.flag("mail-smtp-tls-skip-verify"), blackout_cron=cron,
            blackout_seconds=float(cfg.integer("scheduler-alert-disable-time")),
            dedup_window=cfg.seconds("alert-dedup-window"), min_interval=cfg.seconds("alert-min-interval"),
        )

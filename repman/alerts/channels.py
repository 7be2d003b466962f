"""The two channels: a JSON webhook (Slack/Teams/Mattermost) and mail over SMTP.

Each raises ``ChannelError`` with one line that names the channel and never carries
a secret (no webhook path, no SMTP password), so the caller can log it as it is.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlsplit

from repman.alerts.settings import AlertSettings

TIMEOUT = 10.0


class ChannelError(Exception):
    pass


def webhook_payload(settings: AlertSettings, text: str) -> dict[str, str]:
    """Slack's incoming-webhook JSON; Teams and Mattermost read the same ``text``."""
    payload = {"text": text}
    if settings.webhook_channel:
        payload["channel"] = settings.webhook_channel
    if settings.webhook_user:
        payload["username"] = settings.webhook_user
    return payload


def send_webhook(settings: AlertSettings, text: str, timeout: float = TIMEOUT) -> None:
    host = urlsplit(settings.webhook_url).netloc.rpartition("@")[2]     # never the path: it holds the token
    body = json.dumps(webhook_payload(settings, text)).encode()
    req = urllib.request.Request(settings.webhook_url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:     # noqa: S310 - the operator's URL
            resp.read()
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"webhook {host}: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ChannelError(f"webhook {host}: {reason}") from None


def mail_message(settings: AlertSettings, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(settings.mail_to)
    msg["Subject"] = subject
    msg.set_content(text + "\n")
    return msg


def send_mail(settings: AlertSettings, subject: str, text: str, timeout: float = TIMEOUT) -> None:
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    context = ssl.create_default_context()
    if settings.smtp_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(mail_message(settings, subject, text))
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(f"mail {where}: login of {settings.smtp_user} refused ({exc.smtp_code})") from None
    except smtplib.SMTPException as exc:
        raise ChannelError(f"mail {where}: {type(exc).__name__}: {_smtp_reason(exc)}") from None
    except OSError as exc:
        raise ChannelError(f"mail {where}: {exc.strerror or exc}") from None


def _smtp_reason(exc: smtplib.SMTPException) -> str:
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", b"")
    if code is not None:
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}".strip()
    return str(exc)

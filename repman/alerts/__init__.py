"""Alert channels beside ``alert-script``: a webhook (Slack/Teams JSON) and mail over SMTP.

The watcher hands every alert and server state change to ``dispatch.Alerter`` on its
background pool; the alerter decides whether to send (mute, blackout window, dedup,
minimum interval per kind) and sends to each configured channel. Nothing here knows
the watcher: settings come from a cluster's typed keys (``settings.py``).
"""

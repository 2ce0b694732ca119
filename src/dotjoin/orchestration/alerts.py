"""Failure alerts and notifications: a log line, plus a Slack-compatible JSON webhook when configured.

The payload is what a Slack incoming webhook accepts (``text`` + ``blocks``); Mattermost, Rocket.Chat
and Teams workflows accept the same ``text``. Fields for machines are repeated under ``dotjoin``
(Slack ignores unknown keys). The webhook URL is a secret: it comes from the environment
(``DOTJOIN__ORCHESTRATION__ALERT_WEBHOOK_URL``) or ``.dotjoin/secrets.toml`` and is never logged.
A webhook that cannot be reached is logged, never allowed to mask the failure being reported.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dotjoin.config import Settings

logger = logging.getLogger("dotjoin.alerts")

Runtime = Literal["local", "airflow"]


@dataclass(frozen=True)
class Alert:
    """One failed step of one flow run, after its last retry."""

    flow: str
    step: str
    logical_date: date
    error: str
    attempts: int
    run_id: str
    runtime: Runtime = "local"

    def text(self) -> str:
        return (
            f":red_circle: dotjoin {self.flow}.{self.step} failed for {self.logical_date.isoformat()} "
            f"after {self.attempts} attempt(s) ({self.runtime} run {self.run_id}): {self.error}"
        )


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The Slack-compatible JSON body.

    >>> p = alert_payload(Alert("stocks", "quality", date(2024, 1, 2), "2 rows with high < low", 3, "r1"))
    >>> p["dotjoin"]["dag"], p["dotjoin"]["task"], p["dotjoin"]["date"]
    ('stocks', 'quality', '2024-01-02')
    """
    fields = {
        "DAG": alert.flow,
        "Task": alert.step,
        "Date": alert.logical_date.isoformat(),
        "Attempts": str(alert.attempts),
        "Runtime": alert.runtime,
        "Run": alert.run_id,
    }
    machine = asdict(alert) | {"dag": alert.flow, "task": alert.step, "date": alert.logical_date.isoformat()}
    machine.pop("logical_date")
    return {
        "text": alert.text(),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{alert.flow} failed"}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields.items()],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{alert.error[:2900]}```"}},
        ],
        "dotjoin": machine,
    }


def post_json(settings: Settings, payload: dict[str, Any]) -> bool:
    """POST ``payload`` to the configured webhook; True if it answered 2xx. No webhook: False, quietly."""
    secret = settings.orchestration.alert_webhook_url
    if secret is None or not secret.get_secret_value():
        return False
    import httpx

    try:
        response = httpx.post(
            secret.get_secret_value(), json=payload, timeout=settings.orchestration.alert_timeout_s
        )
    except httpx.HTTPError as exc:
        logger.error("alert webhook unreachable: %s", type(exc).__name__)
        return False
    if response.status_code >= 300:
        logger.error("alert webhook answered HTTP %s", response.status_code)
        return False
    return True


def send_alert(settings: Settings, alert: Alert) -> bool:
    """Log the failure as one ERROR line and post it to the webhook; True if the webhook took it."""
    logger.error("ALERT %s", alert.text())
    return post_json(settings, alert_payload(alert))


def notify(settings: Settings, flow: str, logical_date: date, summary: str) -> bool:
    """A success notification (the ``notify`` steps): an INFO line and, when configured, the webhook."""
    text = f":large_green_circle: dotjoin {flow} {logical_date.isoformat()}: {summary}"
    logger.info("%s", text)
    payload = {"text": text, "dotjoin": {"dag": flow, "date": logical_date.isoformat(), "status": "ok"}}
    return post_json(settings, payload)

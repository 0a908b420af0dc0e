"""Send one alert through Airflow's own notifiers: e-mail and Slack, each when its connection exists."""

from __future__ import annotations

import html
import logging

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

log = logging.getLogger(__name__)
EMAIL_CONN, SLACK_CONN = "smtp_default", "slack_attendance"


def _exists(conn_id: str) -> bool:
    """Is the channel's connection readable here? A deadline callback in Airflow 3.3 may not read connections
    stored in the metadata database (the Execution API refuses its token): define alert connections as
    AIRFLOW_CONN_* variables or in a secrets backend."""
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    except Exception as refused:  # noqa: BLE001 - AirflowSecretsBackendAccessDenied and kin: skip the channel
        log.warning("attendance alert: connection %s unreadable here (%s)", conn_id, type(refused).__name__)
        return False
    return True


def send(subject: str, text: str, recipients: list[str], from_email: str) -> list[str]:
    """Send the alert by every channel that is set up; returns the channels used."""
    used = []
    if recipients and _exists(EMAIL_CONN):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=recipients, from_email=from_email, subject=subject, smtp_conn_id=EMAIL_CONN,
                     html_content=f"<pre>{html.escape(text)}</pre>").notify({})
        used.append("email")
    if _exists(SLACK_CONN):
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        SlackWebhookNotifier(slack_webhook_conn_id=SLACK_CONN, text=f"*{subject}*\n```{text}```").notify({})
        used.append("slack")
    log.info("attendance alert %r sent by %s", subject, ", ".join(used) or "no channel (none is set up)")
    return used

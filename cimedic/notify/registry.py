"""Which channels are configured, and telling all of them at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cimedic.notify.base import Delivery, Notice, Notifier
from cimedic.notify.safe import failed
from cimedic.settings import Settings


def notifiers(settings: Settings) -> list[Notifier]:
    """One notifier per channel whose settings are complete; a half-configured channel is left out."""
    found: list[Notifier] = []
    # Imported here: each pulls in its SDK, and a process that notifies nobody should not pay for them.
    if settings.slack_bot_token and settings.slack_channel:
        from cimedic.notify.slack import SlackNotifier

        found.append(SlackNotifier(settings))
    if settings.smtp_host and settings.email_from and settings.email_to:
        from cimedic.notify.email import EmailNotifier

        found.append(EmailNotifier(settings))
    if settings.pagerduty_routing_key:
        from cimedic.notify.pagerduty import PagerDutyNotifier

        found.append(PagerDutyNotifier(settings))
    if settings.jira_url and settings.jira_project and settings.jira_token:
        from cimedic.notify.jira import JiraNotifier

        found.append(JiraNotifier(settings))
    return found


def _send(notifier: Notifier, notice: Notice) -> Delivery:
    try:
        return notifier.send(notice)
    except Exception as exc:  # a notifier that breaks the contract still cannot silence the others
        return failed(notifier.name, exc)


def broadcast(notice: Notice, channels: list[Notifier]) -> list[Delivery]:
    """Send to every channel concurrently (PagerDuty's retries must not hold Slack back); results in order."""
    if not channels:
        return []
    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="cimedic-notify") as pool:
        return list(pool.map(lambda n: _send(n, notice), channels))

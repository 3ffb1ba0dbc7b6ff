"""notifiers() picks the configured channels; broadcast() tells them all at once over their real SDKs
and local servers, and one broken channel (or a notifier that breaks the contract) stops none of the others."""

from __future__ import annotations

import socket
from pathlib import Path

import test_notify_pagerduty as pagerduty
import test_notify_slack as slack
from pytest_httpserver import HTTPServer

from cimedic.notify.base import Delivery, Notice, Notifier, Severity
from cimedic.notify.registry import broadcast, notifiers
from cimedic.settings import Settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_only_complete_channels_are_used(tmp_path: Path) -> None:
    assert notifiers(Settings(home=tmp_path)) == []
    half = Settings(home=tmp_path, slack_bot_token="xoxb-1", smtp_host="mail", jira_url="https://jira.example")
    assert notifiers(half) == []  # no channel, no sender or recipients, no project or token
    full = Settings(
        home=tmp_path,
        slack_bot_token="xoxb-1",
        slack_channel="#ci",
        smtp_host="mail.example.com",
        email_from="cimedic@example.com",
        email_to=["dev@example.com"],
        pagerduty_routing_key=pagerduty.ROUTING_KEY,
        jira_url="https://jira.example.com",
        jira_project="CI",
        jira_token="t0ken",
    )
    assert [n.name for n in notifiers(full)] == ["slack", "email", "pagerduty", "jira"]


class Broken:
    """A notifier that breaks the contract by raising."""

    name = "broken"

    def send(self, notice: Notice) -> Delivery:
        raise RuntimeError("bug in a notifier")


def test_broadcast_reaches_every_channel_whatever_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    fake_slack = slack.FakeSlack(httpserver)
    fake_pd = pagerduty.FakePagerDuty(httpserver)
    settings = Settings(
        home=tmp_path,
        slack_bot_token=slack.TOKEN,
        slack_api_url=httpserver.url_for("/api/"),
        slack_channel="#ci",
        smtp_host="127.0.0.1",
        smtp_port=closed_port(),  # email is down
        smtp_starttls=False,
        email_from="cimedic@example.com",
        email_to=["dev@example.com"],
        pagerduty_routing_key=pagerduty.ROUTING_KEY,
        pagerduty_url=httpserver.url_for("/v2/enqueue"),
    )
    channels: list[Notifier] = [*notifiers(settings), Broken()]
    notice = slack.notice().model_copy(update={"severity": Severity.ERROR})
    deliveries = broadcast(notice, channels)

    assert [(d.channel, d.ok) for d in deliveries] == [
        ("slack", True),
        ("email", False),
        ("pagerduty", True),
        ("broken", False),
    ]
    assert "ConnectionRefusedError" in deliveries[1].detail
    assert deliveries[3].detail == "RuntimeError: bug in a notifier"
    assert len(fake_slack.posts) == 1 and len(fake_pd.events) == 1
    assert broadcast(notice, []) == []

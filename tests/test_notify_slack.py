"""SlackNotifier through the real slack_sdk WebClient over HTTP to a local Web API (chat.postMessage):
Block Kit message, text fallback, escaping, repeats threaded (across processes), errors as data."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.notify.base import Notice, Severity
from cimedic.notify.slack import SlackNotifier
from cimedic.settings import Settings

TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CHANNEL_ID = "C0123CIMED"


class FakeSlack:
    """chat.postMessage as Slack documents it: HTTP 200 with ok true/false; 429 with Retry-After."""

    def __init__(self, server: HTTPServer) -> None:
        self.posts: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.errors: list[str] = []  # queued `error` values for the next calls
        self.rate_limited = 0  # how many calls to answer 429 first
        self.thread_error: str | None = None  # answer replies (thread_ts) with this error
        server.expect_request("/api/chat.postMessage", method="POST").respond_with_handler(self.post)

    def post(self, request: Request) -> Response:
        if self.rate_limited:
            self.rate_limited -= 1
            body = {"ok": False, "error": "ratelimited"}
            return Response(json.dumps(body), status=429, headers={"Retry-After": "0"}, content_type="application/json")
        payload = request.get_json()
        self.auth.append(request.headers.get("Authorization"))
        if self.errors or (self.thread_error and "thread_ts" in payload):
            error = self.errors.pop(0) if self.errors else self.thread_error
            return Response(json.dumps({"ok": False, "error": error}), content_type="application/json")
        self.posts.append(payload)
        ts = f"1700000000.{len(self.posts):06d}"
        message = {"type": "message", "subtype": "bot_message", "text": payload["text"], "ts": ts, "bot_id": "B01"}
        message |= {"thread_ts": payload["thread_ts"]} if "thread_ts" in payload else {}
        body = {"ok": True, "channel": CHANNEL_ID, "ts": ts, "message": message}
        return Response(json.dumps(body), content_type="application/json; charset=utf-8")


def settings(server: HTTPServer, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home", slack_bot_token=TOKEN, slack_api_url=server.url_for("/api/"), slack_channel="#ci"
    )


def notice(key: str | None = "06dfd2e1e0926264", **extra: Any) -> Notice:
    text = "**timeout failure** in acme/shop main: step hit `timeout-minutes` <!channel> & more"
    fields = {"category": "timeout", "confidence": "95%", "project": "acme/shop"}
    return Notice(
        title="[cimedic] timeout failure in acme/shop main",
        text=text,
        severity=Severity.WARNING,
        dedup_key=key,
        url="https://github.com/acme/shop/actions/runs/42",
        fields=fields,
        **extra,
    )


def test_first_notice_is_a_block_kit_message(httpserver: HTTPServer, tmp_path: Path) -> None:
    slack = FakeSlack(httpserver)
    delivery = SlackNotifier(settings(httpserver, tmp_path)).send(notice())

    assert delivery.ok and delivery.channel == "slack" and delivery.ref == "1700000000.000001"
    assert slack.auth == [f"Bearer {TOKEN}"]
    [post] = slack.posts
    assert post["channel"] == "#ci" and "thread_ts" not in post and post["unfurl_links"] is False
    assert post["text"].startswith("[cimedic] timeout failure")  # the fallback for notifications
    header, section, fields, context = post["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[cimedic] timeout failure in acme/shop main", "emoji": False},
    }
    body = section["text"]
    assert body["type"] == "mrkdwn" and body["text"].startswith("*timeout failure* in acme/shop")
    # Log text cannot mention the channel: Slack's escaping of & < > applies before sending.
    assert "&lt;!channel&gt; &amp; more" in body["text"] and "<!channel>" not in json.dumps(post)
    assert fields["fields"][0] == {"type": "mrkdwn", "text": "*category*\ntimeout"} and len(fields["fields"]) == 3
    [element] = context["elements"]
    assert element["text"] == ":warning: warning · <https://github.com/acme/shop/actions/runs/42|open the run>"
    stored = json.loads((tmp_path / "home" / "notify" / "slack-threads.json").read_text())
    assert stored == {"06dfd2e1e0926264": [CHANNEL_ID, "1700000000.000001"]}


def test_repeat_of_a_fingerprint_replies_in_its_thread_even_from_another_process(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    slack = FakeSlack(httpserver)
    SlackNotifier(settings(httpserver, tmp_path)).send(notice())
    again = SlackNotifier(settings(httpserver, tmp_path))  # a new process: only the JSON file is shared
    reply = again.send(notice())
    other = again.send(notice("another-fingerprint"))

    first, repeat, new = slack.posts
    assert first["channel"] == "#ci" and "thread_ts" not in first
    # The reply goes to the channel id Slack answered with: where the parent lives.
    assert repeat["thread_ts"] == "1700000000.000001" and repeat["channel"] == CHANNEL_ID
    assert repeat["blocks"][-1]["elements"][0]["text"].endswith("· seen again")
    assert reply.ok and reply.detail == "replied in thread 1700000000.000001" and reply.ref == "1700000000.000002"
    assert "thread_ts" not in new and new["channel"] == "#ci" and other.ok


def test_notices_without_a_dedup_key_are_never_threaded(httpserver: HTTPServer, tmp_path: Path) -> None:
    slack = FakeSlack(httpserver)
    notifier = SlackNotifier(settings(httpserver, tmp_path))
    notifier.send(notice(None))
    notifier.send(notice(None))
    assert [p.get("thread_ts") for p in slack.posts] == [None, None]
    assert not (tmp_path / "home" / "notify" / "slack-threads.json").exists()


def test_a_thread_that_is_gone_starts_a_new_message(httpserver: HTTPServer, tmp_path: Path) -> None:
    slack = FakeSlack(httpserver)
    notifier = SlackNotifier(settings(httpserver, tmp_path))
    notifier.send(notice())
    slack.thread_error = "is_archived"  # the parent's channel was archived
    delivery = notifier.send(notice())

    assert delivery.ok and delivery.detail == f"posted to {CHANNEL_ID}" and delivery.ref == "1700000000.000002"
    assert [p.get("thread_ts") for p in slack.posts] == [None, None]
    stored = json.loads((tmp_path / "home" / "notify" / "slack-threads.json").read_text())
    assert stored == {"06dfd2e1e0926264": [CHANNEL_ID, "1700000000.000002"]}  # the new thread


def test_api_errors_come_back_as_a_failed_delivery(httpserver: HTTPServer, tmp_path: Path) -> None:
    slack = FakeSlack(httpserver)
    slack.errors.append("channel_not_found")
    delivery = SlackNotifier(settings(httpserver, tmp_path)).send(notice())
    assert not delivery.ok and delivery.channel == "slack" and "channel_not_found" in delivery.detail
    assert TOKEN not in delivery.detail and "\n" not in delivery.detail


def test_rate_limit_is_waited_out_as_slack_asks(httpserver: HTTPServer, tmp_path: Path) -> None:
    slack = FakeSlack(httpserver)
    slack.rate_limited = 1
    delivery = SlackNotifier(settings(httpserver, tmp_path)).send(notice())
    assert delivery.ok and len(slack.posts) == 1


def test_unreachable_slack_is_a_failed_delivery(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(
        home=tmp_path, slack_bot_token=TOKEN, slack_api_url=f"http://127.0.0.1:{port}/api/", slack_channel="#c"
    )
    delivery = SlackNotifier(s).send(notice())
    assert not delivery.ok and "Connection refused" in delivery.detail

"""PagerDutyNotifier over real HTTP to a local Events API v2 (/v2/enqueue): the trigger event's shape,
skipping below ERROR, retries on 429/5xx (Retry-After honoured), none on 400, errors as data."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cimedic.notify.base import Notice, Severity
from cimedic.notify.pagerduty import PagerDutyNotifier
from cimedic.settings import Settings

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"  # 32 characters, as PagerDuty issues them
ACCEPTED = {"status": "success", "message": "Event processed", "dedup_key": "06dfd2e1e0926264"}
INVALID = {
    "status": "invalid event",
    "message": "Event object is invalid",
    "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
}


class FakePagerDuty:
    """Answers queued (status, body, headers) in order, then 202 with the event's dedup_key."""

    def __init__(self, server: HTTPServer) -> None:
        self.events: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        server.expect_request("/v2/enqueue", method="POST").respond_with_handler(self.enqueue)

    def enqueue(self, request: Request) -> Response:
        self.events.append(request.get_json())
        status, body, headers = self.answers.pop(0) if self.answers else (202, {}, {})
        if status == 202:
            body = ACCEPTED | {"dedup_key": self.events[-1].get("dedup_key", "generated-uuid")}
        return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def settings(server: HTTPServer, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, pagerduty_routing_key=ROUTING_KEY, pagerduty_url=server.url_for("/v2/enqueue"))


def notice(severity: Severity = Severity.CRITICAL, key: str | None = "action:rollback:acme/shop:42") -> Notice:
    return Notice(
        title="[cimedic] rollback failed in acme/shop main",
        text="**rollback** `production`: failed (policy: approve)",
        severity=severity,
        dedup_key=key,
        url="https://github.com/acme/shop/actions/runs/42",
        fields={"action": "rollback", "state": "failed", "project": "acme/shop", "branch": "main", "category": "infra"},
    )


def test_critical_notice_triggers_an_event(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    delivery = PagerDutyNotifier(settings(httpserver, tmp_path)).send(notice())

    assert delivery.ok and delivery.channel == "pagerduty" and delivery.detail == "Event processed"
    assert delivery.ref == "action:rollback:acme/shop:42"  # the dedup_key PagerDuty answered with
    [event] = pd.events
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == "action:rollback:acme/shop:42" and event["client"] == "cimedic"
    assert event["links"] == [{"href": "https://github.com/acme/shop/actions/runs/42", "text": "CI run"}]
    payload = event["payload"]
    assert payload["summary"] == "[cimedic] rollback failed in acme/shop main" and payload["severity"] == "critical"
    assert payload["source"] == "acme/shop" and payload["component"] == "main" and payload["class"] == "infra"
    assert payload["custom_details"]["state"] == "failed" and payload["custom_details"]["text"].startswith("**rollback")


def test_error_pages_warning_and_info_are_skipped(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    notifier = PagerDutyNotifier(settings(httpserver, tmp_path))
    deliveries = [notifier.send(notice(s)) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
    assert [e["payload"]["severity"] for e in pd.events] == ["error"]
    assert [d.ok for d in deliveries] == [True, True, True]
    assert deliveries[1].detail == "skipped: warning notices do not page (error and critical do)"
    assert deliveries[2].ref is None and deliveries[2].detail.startswith("skipped: info")


def test_429_and_5xx_are_retried_honouring_retry_after(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    pd.answers = [(429, {}, {"Retry-After": "0"}), (503, {}, {"Retry-After": "0"}), (500, {}, {"Retry-After": "0"})]
    started = time.monotonic()
    # wait_s is long: only Retry-After (0 s) can make this quick.
    delivery = PagerDutyNotifier(settings(httpserver, tmp_path), wait_s=60).send(notice())
    assert delivery.ok and len(pd.events) == 4 and time.monotonic() - started < 10


def test_retries_run_out(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    pd.answers = [(429, {"status": "throttled", "message": "Requests for this service are arriving too quickly"}, {})]
    pd.answers *= 4
    delivery = PagerDutyNotifier(settings(httpserver, tmp_path), retries=3, wait_s=0.01).send(notice())
    assert not delivery.ok and len(pd.events) == 4 and delivery.detail.startswith("Retryable: HTTP 429")


def test_invalid_event_is_not_retried(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    pd.answers = [(400, INVALID, {})]
    delivery = PagerDutyNotifier(settings(httpserver, tmp_path), wait_s=0.01).send(notice())
    assert not delivery.ok and len(pd.events) == 1
    assert delivery.detail == "HTTP 400: Length of 'routing_key' is incorrect (should be 32 characters)"


def test_long_dedup_keys_are_hashed_to_the_documented_limit(httpserver: HTTPServer, tmp_path: Path) -> None:
    pd = FakePagerDuty(httpserver)
    notifier = PagerDutyNotifier(settings(httpserver, tmp_path))
    for tail in ("a", "b"):
        notifier.send(notice(key="action:" + "x" * 300 + tail))
    notifier.send(notice(key=None))
    first, second, keyless = pd.events
    assert len(first["dedup_key"]) <= 255 and first["dedup_key"].startswith("cimedic-")
    assert first["dedup_key"] != second["dedup_key"] and "dedup_key" not in keyless and "links" in keyless


def test_unreachable_pagerduty_is_retried_then_a_failed_delivery(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(home=tmp_path, pagerduty_routing_key=ROUTING_KEY, pagerduty_url=f"http://127.0.0.1:{port}/v2/enqueue")
    delivery = PagerDutyNotifier(s, retries=1, wait_s=0.01).send(notice())
    assert not delivery.ok and delivery.detail.startswith("ConnectionError") and ROUTING_KEY not in delivery.detail

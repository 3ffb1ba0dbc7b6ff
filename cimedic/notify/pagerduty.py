"""PagerDuty Events API v2: a ``trigger`` event for notices that should wake someone (ERROR and above).

The notice's dedup key is the event's ``dedup_key``, so a repeat of an open alert adds to it rather than
paging again. Retries follow PagerDuty's table: 429, 5xx and network errors are retried "after some time"
(their rate-limit page suggests 3 retries 30 s apart); 400 is not, nor is anything else.
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.notify.safe import at_least, clip, delivers, skipped
from cimedic.settings import Settings

SUMMARY_MAX = 1024  # documented payload.summary limit
DEDUP_MAX = 255  # documented dedup_key limit
DETAILS_MAX = 8000  # custom_details stays a glance; the 512 KB event limit is far away
RETRY_AFTER_MAX = 300.0  # a Retry-After longer than this is not worth blocking a notifier for


class Retryable(Exception):
    """A 429 or 5xx answer: PagerDuty says to retry after some time."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {response.text[:200]}")
        self.response = response


def dedup_key(key: str) -> str:
    # Over-long keys are hashed, not cut: two keys sharing a 255-char prefix must stay two alerts.
    return key if len(key) <= DEDUP_MAX else "cimedic-" + hashlib.sha256(key.encode()).hexdigest()


def event(notice: Notice, routing_key: str) -> dict[str, Any]:
    fields = notice.fields
    details: dict[str, Any] = dict(fields) | {"text": clip(notice.text, DETAILS_MAX)}
    payload = {
        "summary": clip(notice.title, SUMMARY_MAX),
        "source": fields.get("project") or "cimedic",  # the affected system: the repository's CI
        "severity": str(notice.severity),  # cimedic's four levels are PagerDuty's four
        "component": fields.get("branch") or fields.get("action") or "ci",
        "class": fields.get("category") or "ci-failure",
        "custom_details": details,
    }
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": "trigger", "payload": payload}
    body["client"] = "cimedic"
    if notice.dedup_key:
        body["dedup_key"] = dedup_key(notice.dedup_key)
    if notice.url:
        body["links"] = [{"href": notice.url, "text": "CI run"}]
    return body


class PagerDutyNotifier:
    name = "pagerduty"

    def __init__(self, settings: Settings, *, retries: int = 3, wait_s: float = 30.0, timeout_s: float = 30.0) -> None:
        if settings.pagerduty_routing_key is None:
            raise ValueError("PagerDuty needs pagerduty_routing_key")
        self.routing_key = settings.pagerduty_routing_key.get_secret_value()
        self.url = settings.pagerduty_url
        self.retries, self.wait_s, self.timeout_s = retries, wait_s, timeout_s
        self.session = requests.Session()

    def _wait(self, state: RetryCallState) -> float:
        # Honour Retry-After when the server sends one (seconds form), else the documented spacing.
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable):
            after = exc.response.headers.get("Retry-After", "")
            if after.strip().isdigit():
                return min(float(after), RETRY_AFTER_MAX)
        return self.wait_s

    def _post(self, body: dict[str, Any]) -> requests.Response:
        response = self.session.post(self.url, json=body, timeout=self.timeout_s)
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(response)
        return response

    @delivers
    def send(self, notice: Notice) -> Delivery:
        if not at_least(notice.severity, Severity.ERROR):
            return skipped(self.name, f"{notice.severity} notices do not page (error and critical do)")
        retrying = Retrying(
            retry=retry_if_exception_type((Retryable, requests.ConnectionError, requests.Timeout)),
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            reraise=True,  # the last error itself, not tenacity's RetryError, becomes the Delivery's detail
        )
        response = retrying(self._post, event(notice, self.routing_key))
        answer = _json(response)
        if response.status_code != 202:
            errors = "; ".join(str(e) for e in answer.get("errors", [])) or response.text[:200]
            return Delivery(channel=self.name, ok=False, detail=f"HTTP {response.status_code}: {errors}")
        return Delivery(channel=self.name, ok=True, detail=str(answer.get("message", "")), ref=answer.get("dedup_key"))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

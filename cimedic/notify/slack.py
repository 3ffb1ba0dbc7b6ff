"""Slack: a Block Kit message per failure, and repeats of the same failure as replies in its thread.

Which message a dedup key started is kept in a small JSON file, ``$CIMEDIC_HOME/notify/slack-threads.json``
(key -> channel id, ts), guarded by a file lock so concurrent cimedic processes on one host agree. It is a
cache, not a record: losing it only means the next repeat starts a new thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from filelock import FileLock
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.notify.safe import clip, delivers
from cimedic.settings import Settings

THREADS_MAX = 5000  # oldest keys are forgotten first; a forgotten failure simply starts a new thread
# Block Kit limits: header 150 chars, section text 3000, 10 fields of 2000, 10 context elements.
HEADER_MAX, SECTION_MAX, FIELD_MAX, FIELDS_MAX = 150, 3000, 2000, 10
# Errors that mean the stored thread cannot take a reply any more: start a new top-level message instead.
THREAD_GONE = frozenset(
    {"thread_not_found", "invalid_thread_ts", "message_not_found", "channel_not_found", "is_archived"}
)
EMOJI = {Severity.INFO: ":information_source:", Severity.WARNING: ":warning:", Severity.ERROR: ":x:"}
EMOJI[Severity.CRITICAL] = ":rotating_light:"


def _escape(text: str) -> str:
    # Slack's three control characters; escaping them also keeps log text from forming <!channel> or links.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(markdown: str) -> str:
    """Markdown -> Slack mrkdwn (escaped first, so only the links made here are links)."""
    text = _escape(markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)  # bold is a single asterisk
    text = re.sub(r"^#{1,6} +(.+)$", r"*\1*", text, flags=re.M)  # no headings in mrkdwn
    return re.sub(r"\[([^\]|]+)\]\((https?://[^\s)|]+)\)", r"<\2|\1>", text)


def blocks(notice: Notice, *, repeat: bool) -> list[dict[str, Any]]:
    header = {"type": "plain_text", "text": clip(notice.title, HEADER_MAX), "emoji": False}
    out: list[dict[str, Any]] = [
        {"type": "header", "text": header},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn(notice.text), SECTION_MAX)}},
    ]
    fields = list(notice.fields.items())[:FIELDS_MAX]
    if fields:
        items = [{"type": "mrkdwn", "text": clip(f"*{mrkdwn(k)}*\n{mrkdwn(v)}", FIELD_MAX)} for k, v in fields]
        out.append({"type": "section", "fields": items})
    context = [f"{EMOJI[notice.severity]} {notice.severity}"]
    if notice.url:
        context.append(f"<{_escape(notice.url).replace('|', '%7C')}|open the run>")
    if repeat:
        context.append("seen again")
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return out


class ThreadMap:
    """dedup key -> (channel id, ts) of the message that started its thread, in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=10)

    def _read(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}  # a cache: a missing or damaged file only costs new threads
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            found = self._read().get(key)
        return (found[0], found[1]) if isinstance(found, list) and len(found) == 2 else None

    def put(self, key: str, channel: str, ts: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = self._read()
            data.pop(key, None)  # re-inserted last: dict order is recency, the oldest are dropped
            data[key] = [channel, ts]
            self._write(dict(list(data.items())[-THREADS_MAX:]))

    def forget(self, key: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(key, None) is not None:
                self._write(data)

    def _write(self, data: dict[str, list[str]]) -> None:
        tmp = self.path.with_suffix(".tmp")  # only ever written under the lock
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)  # atomic: a reader never sees half a file


class SlackNotifier:
    name = "slack"

    def __init__(self, settings: Settings, *, client: WebClient | None = None) -> None:
        if settings.slack_bot_token is None or not settings.slack_channel:
            raise ValueError("Slack needs slack_bot_token and slack_channel")
        self.channel = settings.slack_channel
        # Slack answers 429 with Retry-After: the SDK's handler waits that long, once or twice.
        self.client = client or WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=30,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
        )
        self.threads = ThreadMap(settings.home / "notify" / "slack-threads.json")

    def _post(self, notice: Notice, channel: str, thread_ts: str | None) -> tuple[str, str]:
        fallback = clip(f"{notice.title}\n{notice.text}", SECTION_MAX)  # notifications, screen readers
        response = self.client.chat_postMessage(
            channel=channel,
            text=mrkdwn(fallback),
            blocks=blocks(notice, repeat=thread_ts is not None),
            thread_ts=thread_ts,
            unfurl_links=False,  # the run's page would bury the message under a preview
            unfurl_media=False,
        )
        return str(response["channel"]), str(response["ts"])

    @delivers
    def send(self, notice: Notice) -> Delivery:
        key = notice.dedup_key
        thread = self.threads.get(key) if key else None
        if thread is not None and key is not None:
            try:
                channel, ts = self._post(notice, thread[0], thread[1])
                return Delivery(channel=self.name, ok=True, detail=f"replied in thread {thread[1]}", ref=ts)
            except SlackApiError as exc:
                if exc.response.get("error") not in THREAD_GONE:
                    raise
                self.threads.forget(key)
        channel, ts = self._post(notice, self.channel, None)
        if key:
            self.threads.put(key, channel, ts)
        return Delivery(channel=self.name, ok=True, detail=f"posted to {channel}", ref=ts)

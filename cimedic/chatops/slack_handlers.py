"""What the Slack bot does on a command, a mention and a button click (wired by ``slack_app``).

Every handler here is a Bolt *lazy listener* or its ack: acks answer at once, the rest runs in
Bolt's listener threads after the HTTP response went back, replying through the Web API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from cimedic.chatops.slack_blocks import APPROVE, CAUSE_RIGHT, action_views, diagnosis_message, escape
from cimedic.chatops.slack_state import CauseVerdict, Post, PostStore, record_cause_feedback
from cimedic.errors import InputError, one_line
from cimedic.heal.audit import AuditLog, State
from cimedic.models import Diagnosis
from cimedic.remote import is_url
from cimedic.settings import Settings

if TYPE_CHECKING:
    from cimedic.heal.policy import Policy

log = logging.getLogger(__name__)

Investigator = Callable[[str], Diagnosis]
USAGE = "Usage: `/cimedic investigate <run URL>` (or mention me with a run URL)."
_URL = re.compile(r"<(https?://[^|>\s]+)(?:\|[^>]*)?>|(https?://\S+)")
_VALUE = re.compile(r"([0-9a-f]{32}):([0-9]{1,12})")
# After a refused decision the message is re-rendered only from a settled state: an "approved" or
# "executing" seen by the losing click would overwrite the winner's final rendering.
_SETTLED = (State.REJECTED, State.SKIPPED, State.EXECUTED, State.FAILED)


def run_url_in(text: str) -> str | None:
    """The first http(s) URL in Slack message text (``<url>``, ``<url|label>`` or bare), unescaped."""
    found = _URL.search(text)
    if found is None:
        return None
    url = found.group(1) or found.group(2)
    return url.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class Asked:
    target: str | None = None
    label: str = ""
    problem: str | None = None


def default_investigate(target: str) -> Diagnosis:
    from cimedic.crew.flow import investigate  # CrewAI loads on first use, not when the app is built

    return investigate(target)


class SlackBot:
    """The handlers and what they use; :func:`build_app` wires them into a Bolt app."""

    def __init__(self, settings: Settings, client: WebClient, investigate: Investigator, local_root: Path | None):
        self.settings = settings
        self.client = client
        self.investigate = investigate
        self.local_root = local_root.resolve() if local_root else None
        self.approvers = frozenset(settings.slack_approvers)
        self.posts = PostStore(settings)
        self.audit = AuditLog(settings)

    # -- investigate ---------------------------------------------------------------------------------

    def asked(self, text: str) -> Asked:
        """What the text after the command asks to investigate, or why it cannot be."""
        verb, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        if verb.lower() != "investigate" or not rest:
            return Asked(problem=USAGE)
        url = run_url_in(rest)
        if url is not None:
            return Asked(target=url, label=url)
        if self.local_root is None:
            return Asked(problem="Give a run URL: this bot does not read files on its server.")
        path = Path(rest)
        resolved = (path if path.is_absolute() else self.local_root / path).resolve()
        if not resolved.is_relative_to(self.local_root) or not resolved.exists():
            return Asked(problem=f"No such run material under the bot's folder: {escape(rest[:200])}")
        return Asked(target=str(resolved), label=str(resolved.relative_to(self.local_root)))

    def ack_command(self, ack: Ack, body: dict[str, Any]) -> None:
        asked = self.asked(body.get("text", ""))
        ack(text=asked.problem or f"Investigating {escape(asked.label)}…")

    def run_command(self, body: dict[str, Any], respond: Respond) -> None:
        asked = self.asked(body.get("text", ""))
        if asked.target is None:
            return  # the ack said why
        try:
            self.investigate_and_post(asked.target, asked.label, body["user_id"], body["channel_id"])
        except Exception as exc:  # told to the person who asked, as one redacted line
            log.warning("slack: investigating %s failed: %s", asked.label, one_line(exc))
            respond(text=f"cimedic could not investigate {escape(asked.label)}: {escape(one_line(exc))}")

    def ack_only(self, ack: Ack) -> None:
        ack()

    def run_mention(self, body: dict[str, Any]) -> None:
        event = body["event"]
        channel, thread = event["channel"], event.get("thread_ts") or event["ts"]
        url = run_url_in(event.get("text", ""))
        try:
            if url is None:
                self.client.chat_postMessage(channel=channel, thread_ts=thread, text=USAGE)
                return
            self.investigate_and_post(url, url, event.get("user", ""), channel, thread)
        except Exception as exc:
            log.warning("slack: mention with %s failed: %s", url, one_line(exc))
            text = f"cimedic could not investigate {escape(url or '')}: {escape(one_line(exc))}"
            self.client.chat_postMessage(channel=channel, thread_ts=thread, text=text)

    def investigate_and_post(self, target: str, label: str, user: str, channel: str, thread: str | None = None) -> None:
        diag = self.investigate(target)
        actions = self.propose(target, diag)
        post = Post(target=target, label=label, requested_by=user, diagnosis=diag, actions=actions)
        self.posts.save(post)
        text, blocks = self.render(post)
        self.client.chat_postMessage(
            channel=channel, thread_ts=thread, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )

    def propose(self, target: str, diag: Diagnosis) -> list[int]:
        """A dry-run heal: every proposal lands in the audit log (with its id and policy level), nothing runs."""
        from cimedic.heal.base import HealContext
        from cimedic.heal.engine import heal
        from cimedic.tools.ci.urls import parse_run_url

        ref = parse_run_url(target, self.settings) if is_url(target) else None
        report = heal(diag, HealContext(diag, self.settings, ref=ref, dry_run=True), self._policy(), self.audit)
        return [step.action_id for step in report.steps]

    def render(self, post: Post) -> tuple[str, list[dict[str, Any]]]:
        return diagnosis_message(post, action_views(self.audit, post.actions), self.posts.verdict(post.key))

    def _policy(self) -> Policy:
        from cimedic.heal.policy import load_policy

        return load_policy(self.settings.policy_path)  # read each time: it may have changed

    # -- buttons -------------------------------------------------------------------------------------

    def run_decision(self, body: dict[str, Any]) -> None:
        """Approve (and execute) or reject one action; only approvers, and only once."""
        from cimedic.heal.approvals import approve, reject

        user, action = body["user"]["id"], body["actions"][0]
        found = _VALUE.fullmatch(str(action.get("value", "")))
        post = self.posts.load(found.group(1)) if found else None
        action_id = int(found.group(2)) if found else 0
        if post is None or action_id not in post.actions:
            self.whisper(body, "This message is not one cimedic knows any more; nothing was done.")
            return
        if user not in self.approvers:
            log.warning("slack: %s (not an approver) clicked %s on action %s", user, action["action_id"], action_id)
            self.whisper(body, "Only approvers (the `slack_approvers` setting) may decide actions; nothing was done.")
            return
        by = f"slack:{user}"
        try:
            if action["action_id"] == APPROVE:
                approve(self.audit, self._policy(), self.settings, action_id, by, execute=True)
            else:
                reject(self.audit, action_id, by, f"rejected in Slack by {user}")
        except InputError as exc:
            self.whisper(body, f"Nothing done: {escape(str(exc))}")
            record = self.audit.get(action_id)
            if record is None or record.state not in _SETTLED:
                return
        self.update(body, post)

    def run_cause(self, body: dict[str, Any]) -> None:
        """Right / Wrong cause: recorded once per message, only from approvers."""
        user, action = body["user"]["id"], body["actions"][0]
        post = self.posts.load(str(action.get("value", "")))
        if post is None:
            self.whisper(body, "This message is not one cimedic knows any more; nothing was recorded.")
            return
        if user not in self.approvers:
            self.whisper(body, "Only approvers (the `slack_approvers` setting) teach cimedic; nothing was recorded.")
            return
        verdict = CauseVerdict(right=action["action_id"] == CAUSE_RIGHT, by=f"slack:{user}")
        earlier = self.posts.decide(post.key, verdict)
        if earlier is not None:
            said = "confirmed" if earlier.right else "marked wrong"
            self.whisper(body, f"The cause was already {said}; nothing more recorded.")
            return
        try:
            note = record_cause_feedback(self.settings, self.audit, post, verdict)
        except Exception as exc:
            self.posts.undecide(post.key)  # not recorded: the buttons stay usable
            log.warning("slack: recording cause feedback failed: %s", one_line(exc))
            self.whisper(body, f"Could not record it: {escape(one_line(exc))}")
            return
        self.update(body, post)
        self.whisper(body, f"Thanks: {escape(note)}.")

    def update(self, body: dict[str, Any], post: Post) -> None:
        text, blocks = self.render(post)
        self.client.chat_update(channel=_channel(body), ts=body["container"]["message_ts"], text=text, blocks=blocks)

    def whisper(self, body: dict[str, Any], text: str) -> None:
        thread = (body.get("message") or {}).get("thread_ts")
        self.client.chat_postEphemeral(channel=_channel(body), user=body["user"]["id"], text=text, thread_ts=thread)


def _channel(body: dict[str, Any]) -> str:
    return str((body.get("channel") or {}).get("id") or body["container"]["channel_id"])

"""Jira: one issue per failure fingerprint, found again by its label.

An open issue (status category not Done) labelled ``cimedic-fp-<key>`` in the project gets a comment for
each repeat; when there is none (never filed, or closed since) a new issue is created with the full report
attached as ``rca.md``. Jira itself is the dedup store: nothing is kept on this side.
Two processes filing the same new failure at the same instant can both create an issue (Jira has no
conditional create); the next repeat then comments on the newest.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

from jira import JIRA, Issue

from cimedic.notify.base import Delivery, Notice
from cimedic.notify.safe import clip, delivers, failed
from cimedic.settings import Settings

LABEL_PREFIX = "cimedic-fp-"
SUMMARY_MAX = 255  # Jira's summary field limit
TEXT_MAX = 30000  # descriptions and comments stay well below Jira's 32767-character field limit


def label(key: str) -> str:
    # Labels cannot hold spaces; anything else odd in the key becomes "-" (fingerprints are hex anyway).
    # Over-long keys are hashed, not cut: two keys sharing a prefix must stay two issues (labels max 255).
    clean = re.sub(r"[^A-Za-z0-9_.:-]", "-", key)
    return LABEL_PREFIX + (clean if len(clean) <= 200 else hashlib.sha256(key.encode()).hexdigest())


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A markdown link becomes a wiki link; any other bracket or brace is escaped, so a log line such as
# "[ERROR] {code}" can neither turn into a link nor open a macro.
_LINK_OR_SPECIAL = re.compile(r"\[([^\]|\n]+)\]\((https?://[^\s)|]+)\)|([\[\]{}])")


def wiki(markdown: str) -> str:
    """The notice's markdown as Jira wiki markup (REST v2 descriptions and comments are wiki text)."""
    text = _LINK_OR_SPECIAL.sub(lambda m: f"[{m[1]}|{m[2]}]" if m[1] else "\\" + m[3], markdown)
    text = re.sub(r"`([^`\n]+)`", r"{{\1}}", text)  # inline code -> monospace
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)  # bold
    text = re.sub(r"^#{1,6} +(.+)$", r"*\1*", text, flags=re.M)  # no markdown headings in wiki text
    return re.sub(r"^- ", "* ", text, flags=re.M)  # bullets


class JiraNotifier:
    name = "jira"

    def __init__(self, settings: Settings, *, max_retries: int = 3, timeout_s: float = 30.0) -> None:
        if not (settings.jira_url and settings.jira_project and settings.jira_token):
            raise ValueError("Jira needs jira_url, jira_project and jira_token")
        self.url, self.project = settings.jira_url, settings.jira_project
        self.issue_type = settings.jira_issue_type
        self.user, self.token = settings.jira_user, settings.jira_token.get_secret_value()
        self.max_retries, self.timeout_s = max_retries, timeout_s

    def client(self) -> JIRA:
        # Built per send, not in __init__: an unreachable Jira must become a Delivery, not break setup.
        # With a user: Cloud's email + API token (basic); without: a Server/DC personal access token (bearer).
        if self.user:
            return JIRA(
                self.url, basic_auth=(self.user, self.token), max_retries=self.max_retries, timeout=self.timeout_s
            )
        return JIRA(self.url, token_auth=self.token, max_retries=self.max_retries, timeout=self.timeout_s)

    def open_issue(self, jira: JIRA, key: str) -> Issue | None:
        jql = (
            f"project = {_jql_string(self.project)} AND labels = {_jql_string(label(key))}"
            " AND statusCategory != Done ORDER BY created DESC"
        )
        found = jira.search_issues(jql, maxResults=1, fields="summary,status,labels")
        return found[0] if not isinstance(found, dict) and found else None

    def _body(self, notice: Notice) -> str:
        facts = [f"* {wiki(k)}: {wiki(v)}" for k, v in notice.fields.items()]
        link = [f"[Open the run|{notice.url}]"] if notice.url else []
        report = ["", "The full report is attached (rca.md)."] if notice.attachment else []
        return clip("\n".join([wiki(notice.text), "", *facts, *link, *report]), TEXT_MAX)

    @delivers
    def send(self, notice: Notice) -> Delivery:
        jira = self.client()
        try:
            existing = self.open_issue(jira, notice.dedup_key) if notice.dedup_key else None
            if existing is not None:
                jira.add_comment(existing.key, f"Seen again: {wiki(notice.title)}\n\n{self._body(notice)}")
                return Delivery(channel=self.name, ok=True, detail=f"commented on {existing.key}", ref=existing.key)
            labels = ["cimedic"] + ([label(notice.dedup_key)] if notice.dedup_key else [])
            fields = {
                # {"key"} and {"name"} forms: no extra lookups of the project's or issue type's ids.
                "project": {"key": self.project},
                "issuetype": {"name": self.issue_type},
                "summary": clip(" ".join(notice.title.split()), SUMMARY_MAX),
                "description": self._body(notice),
                "labels": labels,
            }
            # Severity is not mapped to a priority: priority names differ per Jira instance.
            issue = jira.create_issue(fields=fields, prefetch=False)
            detail = f"created {issue.key}"
            if notice.attachment:
                try:
                    self._attach(jira, issue.key, notice.attachment)
                except Exception as exc:  # the issue exists: still report it (its key), with what went wrong
                    detail += f"; rca.md not attached ({failed(self.name, exc).detail})"
            return Delivery(channel=self.name, ok=True, detail=detail, ref=issue.key)
        finally:
            jira.close()  # type: ignore[no-untyped-call]  # jira leaves close() unannotated

    @staticmethod
    def _attach(jira: JIRA, key: str, report: str) -> None:
        # add_attachment wants a real file (it reads the name and streams it); a scratch one is removed after.
        with tempfile.TemporaryDirectory(prefix="cimedic-rca-") as scratch:
            path = Path(scratch) / "rca.md"
            path.write_text(report, encoding="utf-8")
            with path.open("rb") as handle:
                jira.add_attachment(key, handle, filename="rca.md")

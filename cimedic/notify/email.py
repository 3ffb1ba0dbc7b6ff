"""Email over SMTP: text and HTML alternatives, the full RCA report attached as ``rca.md``.

Notices of one dedup key (the same failure) carry the same ``References``/``In-Reply-To`` root, so mail
clients thread the repeats together without cimedic keeping any state.
"""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from markdown_it import MarkdownIt

from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.notify.safe import at_least, delivers
from cimedic.settings import Settings

# Raw HTML in the markdown is shown as text, never rendered: notices quote log lines, which are not ours.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def _one_line(text: str) -> str:
    # A header with a line break would be refused (or, worse, start a new header).
    return " ".join(text.split())


class EmailNotifier:
    name = "email"

    def __init__(self, settings: Settings, *, timeout_s: float = 30.0) -> None:
        if not (settings.smtp_host and settings.email_from and settings.email_to):
            raise ValueError("email needs smtp_host, email_from and email_to")
        self.host, self.port = settings.smtp_host, settings.smtp_port
        self.starttls = settings.smtp_starttls
        self.user = settings.smtp_user
        self.password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        self.sender, self.recipients = settings.email_from, list(settings.email_to)
        self.domain = self.sender.rpartition("@")[2] or "cimedic.local"
        self.timeout_s = timeout_s

    def _thread_root(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"<cimedic.{digest}@{self.domain}>"

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = _one_line(notice.title)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid("cimedic", domain=self.domain)
        msg["X-Cimedic-Severity"] = str(notice.severity)
        if at_least(notice.severity, Severity.ERROR):
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        if notice.dedup_key:
            root = self._thread_root(notice.dedup_key)
            msg["References"] = root
            msg["In-Reply-To"] = root
            msg["X-Cimedic-Dedup-Key"] = _one_line(notice.dedup_key)
        facts = [f"{k}: {v}" for k, v in notice.fields.items()]
        link = [f"Run: {notice.url}"] if notice.url else []
        msg.set_content("\n".join([notice.text, "", *facts, *link]) + "\n")
        msg.add_alternative(self._html(notice), subtype="html")
        if notice.attachment:
            msg.add_attachment(notice.attachment, subtype="markdown", filename="rca.md")
        return msg

    def _html(self, notice: Notice) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in notice.fields.items()
        )
        parts = [f"<h2>{html.escape(notice.title)}</h2>", _MARKDOWN.render(notice.text)]
        if rows:
            parts.append(f"<table>{rows}</table>")
        if notice.url:
            parts.append(f'<p><a href="{html.escape(notice.url, quote=True)}">Open the run</a></p>')
        if notice.attachment:
            parts.append("<p>The full report is attached (rca.md).</p>")
        return "<html><body>" + "".join(parts) + "</body></html>\n"

    @delivers
    def send(self, notice: Notice) -> Delivery:
        msg = self.message(notice)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                # smtplib's own default context verifies nothing; this one checks the certificate and host name.
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            # Raises when every recipient is refused; returns the refused ones when only some are.
            refused = smtp.send_message(msg)
        sent = len(self.recipients) - len(refused)
        detail = f"sent to {sent} recipient(s)" + (f", refused: {', '.join(sorted(refused))}" if refused else "")
        return Delivery(channel=self.name, ok=True, detail=detail, ref=str(msg["Message-ID"]))

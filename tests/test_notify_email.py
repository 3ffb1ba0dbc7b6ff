"""EmailNotifier through smtplib to a real aiosmtpd server on a free port: headers, the text and HTML
alternatives, the rca.md attachment, threading of repeats, verified STARTTLS with AUTH, errors as data."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cimedic.notify.base import Notice, Severity
from cimedic.notify.email import EmailNotifier
from cimedic.settings import Settings

REPORT = "### cimedic: timeout failure (95% confidence)\n\nStep 'Run tests' hit its timeout-minutes limit.\n"
REFUSED = "nobody@example.com"


class Inbox:
    """The aiosmtpd handler: keeps what arrived and who logged in; refuses one address."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.tls: list[bool] = []

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if address == REFUSED:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        # handled=False: aiosmtpd answers a refusal with 535 itself (True would leave the client waiting).
        return AuthResult(success=data.password == b"s3cret-pass", handled=False)

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.original_content or b"", policy=policy.default) for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(inbox: Inbox, **smtp: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def plain_port(inbox: Inbox) -> Iterator[int]:
    yield from serve(inbox)


def settings(port: int, **extra: Any) -> Settings:
    base: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    base |= {"email_from": "cimedic@ci.example.com", "email_to": ["dev@example.com", "lead@example.com"]}
    return Settings(**(base | extra))


def notice(severity: Severity = Severity.ERROR) -> Notice:
    return Notice(
        title="[cimedic] timeout failure in acme/shop main",
        text="**timeout failure**: step hit `timeout-minutes` <script>alert(1)</script>\n\n- retry `run`",
        severity=severity,
        dedup_key="06dfd2e1e0926264",
        url="https://github.com/acme/shop/actions/runs/42",
        fields={"category": "timeout", "project": "acme/shop"},
        attachment=REPORT,
    )


def test_message_has_text_html_and_the_report(inbox: Inbox, plain_port: int) -> None:
    delivery = EmailNotifier(settings(plain_port)).send(notice())

    assert delivery.ok and delivery.channel == "email" and delivery.detail == "sent to 2 recipient(s)"
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "cimedic@ci.example.com"
    assert envelope.rcpt_tos == ["dev@example.com", "lead@example.com"]
    [msg] = inbox.messages()
    assert msg["Subject"] == "[cimedic] timeout failure in acme/shop main"
    assert msg["From"] == "cimedic@ci.example.com" and msg["To"] == "dev@example.com, lead@example.com"
    assert msg["Message-ID"] == delivery.ref and msg["Message-ID"].endswith("@ci.example.com>")
    assert msg["X-Cimedic-Severity"] == "error" and msg["Importance"] == "high" and msg["Date"]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.iter_parts()
    text, html = alternative.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "**timeout failure**" in text.get_content() and "Run: https://github.com/acme" in text.get_content()
    body = html.get_content()
    assert "<strong>timeout failure</strong>" in body and "<code>timeout-minutes</code>" in body
    assert "<script>" not in body and "&lt;script&gt;" in body  # log text is shown, never run
    assert '<a href="https://github.com/acme/shop/actions/runs/42">' in body and "<td>acme/shop</td>" in body
    assert attachment.get_content_type() == "text/markdown" and attachment.get_filename() == "rca.md"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content().replace("\r\n", "\n") == REPORT  # SMTP carries CRLF line ends


def test_repeats_of_a_failure_share_one_thread_root(inbox: Inbox, plain_port: int) -> None:
    notifier = EmailNotifier(settings(plain_port))
    notifier.send(notice())
    notifier.send(notice())
    first, second = inbox.messages()
    assert first["References"] == second["References"] == first["In-Reply-To"]
    assert first["References"].endswith("@ci.example.com>") and first["Message-ID"] != second["Message-ID"]
    assert first["X-Cimedic-Dedup-Key"] == "06dfd2e1e0926264"


def test_info_notice_is_not_marked_important(inbox: Inbox, plain_port: int) -> None:
    EmailNotifier(settings(plain_port)).send(notice(Severity.INFO))
    [msg] = inbox.messages()
    assert msg["Importance"] is None and msg["X-Cimedic-Severity"] == "info"


def test_a_refused_recipient_is_reported_all_refused_is_a_failure(inbox: Inbox, plain_port: int) -> None:
    some = EmailNotifier(settings(plain_port, email_to=["dev@example.com", REFUSED])).send(notice())
    assert some.ok and some.detail == f"sent to 1 recipient(s), refused: {REFUSED}"
    none = EmailNotifier(settings(plain_port, email_to=[REFUSED])).send(notice())
    assert not none.ok and "SMTPRecipientsRefused" in none.detail and len(inbox.envelopes) == 1


def test_starttls_configured_but_not_offered_sends_nothing(inbox: Inbox, plain_port: int) -> None:
    delivery = EmailNotifier(settings(plain_port, smtp_starttls=True)).send(notice())
    assert not delivery.ok and "STARTTLS extension not supported by server" in delivery.detail
    assert inbox.envelopes == []  # no silent fall back to plain text


def test_unreachable_server_is_a_failed_delivery() -> None:
    delivery = EmailNotifier(settings(free_port())).send(notice())
    assert not delivery.ok and "ConnectionRefusedError" in delivery.detail


# -- STARTTLS with a certificate the client verifies --------------------------------------------------


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: ca.pem, cert.pem, key.pem."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cimedic test CA")])
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name, public_key=ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(issuer_name=ca_name, public_key=key.public_key())
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    no_password = serialization.NoEncryption()
    pem = serialization.PrivateFormat.PKCS8
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, pem, no_password))
    return paths


def test_starttls_verifies_the_server_then_logs_in(
    inbox: Inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = _certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    # The test CA is trusted the way any deployment adds one: OpenSSL's SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    tls = {"tls_context": server_tls, "require_starttls": True, "authenticator": inbox.authenticate}
    for port in serve(inbox, **tls, auth_require_tls=True):
        creds = {"smtp_starttls": True, "smtp_user": "ci-bot", "smtp_password": "s3cret-pass"}
        delivery = EmailNotifier(settings(port, **creds)).send(notice())
        wrong = EmailNotifier(settings(port, **creds | {"smtp_password": "nope"})).send(notice())

    assert delivery.ok and inbox.tls == [True] and inbox.logins[0] == (b"ci-bot", b"s3cret-pass")
    assert not wrong.ok and "SMTPAuthenticationError" in wrong.detail and "nope" not in wrong.detail


def test_starttls_refuses_an_untrusted_certificate(inbox: Inbox, tmp_path: Path) -> None:
    _, cert, key = _certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    for port in serve(inbox, tls_context=server_tls, require_starttls=True):
        delivery = EmailNotifier(settings(port, smtp_starttls=True)).send(notice())
    assert not delivery.ok and "CERTIFICATE_VERIFY_FAILED" in delivery.detail and inbox.envelopes == []

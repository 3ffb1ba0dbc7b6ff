"""The one place a channel failure becomes data: every notifier's ``send`` is wrapped by ``delivers``.

A notifier then raises freely inside (SDK errors, timeouts, refused connections) and the caller still
gets a ``Delivery``: one broken channel cannot stop the others, and no try/except is repeated per channel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from cimedic.errors import one_line
from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.redact import redact

log = logging.getLogger("cimedic.notify")

DETAIL_MAX = 500  # a Delivery is a status line, not a log
# Severity is a StrEnum: its string order is alphabetical, so ranks are spelled out.
RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


class _Named(Protocol):
    name: str


N = TypeVar("N", bound=_Named)


def at_least(severity: Severity, floor: Severity) -> bool:
    return RANK[severity] >= RANK[floor]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed(channel: str, exc: BaseException) -> Delivery:
    # SDK errors quote URLs, headers or request bodies: redacted before they reach a log or a caller.
    detail = clip(redact(one_line(exc)), DETAIL_MAX)
    log.warning("%s notice not delivered: %s", channel, detail)
    return Delivery(channel=channel, ok=False, detail=detail)


def skipped(channel: str, why: str) -> Delivery:
    # Not a failure: the channel chose not to speak (e.g. paging for an info notice).
    return Delivery(channel=channel, ok=True, detail=f"skipped: {why}")


def delivers(send: Callable[[N, Notice], Delivery]) -> Callable[[N, Notice], Delivery]:
    """Wrap a notifier's ``send`` so any exception comes back as ``Delivery(ok=False)``."""

    @functools.wraps(send)
    def wrapper(self: N, notice: Notice) -> Delivery:
        try:
            return send(self, notice)
        except Exception as exc:  # errors as data: the Notifier contract
            return failed(self.name, exc)

    return wrapper

"""How python-gitlab's requests and failures reach the guard: error reading, paging and ids.

python-gitlab sleeps and retries on its own when GitLab answers 429 (``obey_rate_limit``, up to
``max_retries``). Every call passes ``SDK`` (``obey_rate_limit=False``) and the client is built with
``retry_transient_errors=False``, so the guard is the one retry policy. The SDK's exceptions keep the
status code and the body but drop the response headers; ``LastAnswer`` is a requests response hook
that keeps the last answer's headers so ``classify`` can hand ``Retry-After``/``RateLimit-Reset`` to
the guard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from gitlab.base import RESTObjectList
from gitlab.exceptions import GitlabConnectionError, GitlabError, GitlabParsingError, RedirectError

from cimedic.tools.ci.guard import Guard, HttpFailure, ProviderError

# On every SDK call: without it python-gitlab sleeps through 429s by itself, behind the guard's back.
SDK: dict[str, Any] = {"obey_rate_limit": False}
# No answer: refused, timed out, or the connection broke while a trace streamed.
_NO_ANSWER = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    GitlabConnectionError,
)


class LastAnswer(threading.local):
    """The last HTTP answer this thread received: python-gitlab's exceptions drop its headers."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}

    def remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The session's response hook."""
        self.status = response.status_code
        self.headers = dict(response.headers) if response.status_code >= 400 else {}

    def classify(self, exc: BaseException) -> HttpFailure | None:
        """What a python-gitlab (or requests) exception says about the HTTP exchange; None for real bugs."""
        if isinstance(exc, _NO_ANSWER):
            return HttpFailure(None, {}, str(exc))
        if not isinstance(exc, GitlabError):
            return None
        if exc.response_code is not None:
            # The exception was raised for the answer the hook saw last in this thread.
            headers = self.headers if self.status == exc.response_code else {}
            return HttpFailure(exc.response_code, headers, str(exc.error_message))
        if isinstance(exc, GitlabParsingError) and self.status is not None:
            return HttpFailure(self.status, {}, "the answer is not GitLab API JSON; check the server URL")
        if isinstance(exc, RedirectError) and self.status is not None:
            return HttpFailure(self.status, {}, str(exc.error_message))
        return None


def pages(guard: Guard, subject: str, open_listing: Callable[[], RESTObjectList[Any]]) -> Iterator[dict[str, Any]]:
    """Items of a paginated list. The listing holds the first page; it fetches each further page
    (the Link header's next URL) inside next(), so every page is one guarded call, and a failed
    fetch leaves the listing where it was for the retry."""
    listing = guard.call(subject, open_listing)
    while True:
        item = guard.call(subject, lambda: next(listing, None))
        if item is None:
            return
        yield item.asdict()


def number(subject: str, text: str, what: str) -> int:
    if not text.isdigit():
        raise ProviderError(subject, f"GitLab {what} ids are numbers, not {text!r}")
    return int(text)


def iso(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")

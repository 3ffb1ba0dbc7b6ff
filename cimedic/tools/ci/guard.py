"""The one place where CI SDK calls are retried and their failures become data.

Every provider call goes through ``Guard.call``: rate limits and transient errors are retried with
tenacity, waiting what the platform asks (``Retry-After``, ``X-RateLimit-Reset``) but never longer
than the configured bound; everything else becomes a one-line ``ProviderError`` that says which
token or permission is missing. Providers only teach the guard how to read their SDK's exceptions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.redact import redact
from cimedic.settings import CIClient

T = TypeVar("T")
MESSAGE_MAX = 200
TRANSIENT = {500, 502, 503, 504}
PLATFORM_NAMES = {
    Platform.GITHUB_ACTIONS: "GitHub",
    Platform.GITLAB: "GitLab",
    Platform.JENKINS: "Jenkins",
    Platform.AZURE_DEVOPS: "Azure DevOps",
}


class ProviderError(InputError):
    """A CI platform refused or failed a request; the message is one line, without secrets."""


@dataclass(frozen=True)
class HttpFailure:
    """What a provider's SDK exception says about the HTTP exchange (status None: no answer)."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower())


def asked_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the platform asks us to wait: Retry-After (seconds or date), else the rate-limit reset."""
    now = time.time() if now is None else now
    retry_after = header(headers, "Retry-After")
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(retry_after).timestamp() - now, 0.0)
            except (TypeError, ValueError):
                pass
    # GitHub: X-RateLimit-Reset; GitLab: RateLimit-Reset. Both are epoch seconds.
    reset = header(headers, "X-RateLimit-Reset") or header(headers, "RateLimit-Reset")
    if reset:
        try:
            return max(float(reset) - now, 0.0) + 1.0
        except ValueError:
            return None
    return None


def is_rate_limited(failure: HttpFailure) -> bool:
    if failure.status == 429:
        return True
    if failure.status != 403:
        return False
    remaining = header(failure.headers, "X-RateLimit-Remaining") or header(failure.headers, "RateLimit-Remaining")
    return (
        remaining == "0"
        or header(failure.headers, "Retry-After") is not None
        or "rate limit" in failure.message.lower()
    )


@dataclass
class Guard:
    """Retry policy and error wording for one provider."""

    platform: Platform
    base_url: str
    token_setting: str
    read_scopes: str
    write_scopes: str
    classify: Callable[[BaseException], HttpFailure | None]
    client: CIClient = field(default_factory=CIClient)
    has_token: bool = True
    sleep: Callable[[float], None] = time.sleep

    @property
    def name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, str(self.platform))

    def call(self, subject: str, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run one SDK call; retry what is worth retrying, turn the rest into a ProviderError."""
        retrying = Retrying(
            stop=stop_after_attempt(self.client.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(self._retryable),
            reraise=True,
            sleep=self.sleep,
        )
        try:
            return retrying(fn)
        except ProviderError:
            raise
        except Exception as exc:
            failure = self.classify(exc)
            if failure is None:
                raise
            raise self.error(subject, failure, write=write) from exc

    def _retryable(self, exc: BaseException) -> bool:
        failure = self.classify(exc)
        if failure is None:
            return False
        if failure.status is None or failure.status in TRANSIENT:
            return True
        if is_rate_limited(failure):
            wait = asked_wait(failure.headers)
            # A reset further away than we may wait: give up now with a clear message.
            return wait is None or wait <= self.client.max_wait_s
        return False

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        failure = self.classify(exc) if exc else None
        asked = asked_wait(failure.headers) if failure else None
        if asked is None:
            # No hint from the server: exponential backoff with jitter, so parallel sweeps spread out.
            asked = min(2.0 ** (state.attempt_number - 1), 30.0) * (0.5 + random.random() / 2)
        return min(asked, self.client.max_wait_s)

    def error(self, subject: str, failure: HttpFailure, *, write: bool = False) -> ProviderError:
        scopes = self.write_scopes if write else self.read_scopes
        said = " ".join(redact(failure.message).split())[:MESSAGE_MAX]
        status = failure.status
        if status is None:
            problem = f"cannot reach {self.name} at {self.base_url}: {said or 'no answer'}"
        elif is_rate_limited(failure):
            wait = asked_wait(failure.headers)
            when = f"; it resets in {int(wait)} s" if wait is not None else ""
            problem = (
                f"{self.name} rate limit exceeded (HTTP {status}){when}, beyond what cimedic waits "
                f"(ci.max_wait_s={self.client.max_wait_s:g}, ci.retries={self.client.retries}); "
                f"try later or use a token with a higher limit"
            )
        elif status == 401:
            if self.has_token:
                problem = f"{self.name} rejected the token (HTTP 401): check {self.token_setting} ({scopes})"
            else:
                problem = f"{self.name} needs a token (HTTP 401): set {self.token_setting} ({scopes})"
        elif status == 403:
            problem = f"{self.name} refused access (HTTP 403): the token in {self.token_setting} needs {scopes}"
        elif status == 404:
            problem = (
                f"not found on {self.name} (HTTP 404): check the URL, or the token in {self.token_setting} "
                f"cannot see this project (needs {scopes})"
            )
        else:
            problem = f"{self.name} answered HTTP {status}: {said or 'no details'}"
        return ProviderError(subject, problem)

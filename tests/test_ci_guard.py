"""The shared retry/error helper every provider call goes through, and streaming logs to disk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cimedic.models import Platform
from cimedic.settings import CIClient
from cimedic.tools.ci.download import stream_to_file
from cimedic.tools.ci.guard import Guard, HttpFailure, ProviderError, asked_wait, is_rate_limited


class Refused(Exception):
    """Stands in for an SDK's HTTP error: what providers' classify functions read."""

    def __init__(self, status: int | None, headers: dict[str, str] | None = None, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def classify(exc: BaseException) -> HttpFailure | None:
    if isinstance(exc, Refused):
        return HttpFailure(exc.status, exc.headers, str(exc))
    return None


def make_guard(sleeps: list[float], *, retries: int = 3, max_wait: float = 60.0, has_token: bool = True) -> Guard:
    return Guard(
        platform=Platform.GITHUB_ACTIONS,
        base_url="https://api.github.com",
        token_setting="CIMEDIC_GITHUB_TOKEN",
        read_scopes="Actions: read",
        write_scopes="Actions: write",
        classify=classify,
        client=CIClient(retries=retries, max_wait_s=max_wait),
        has_token=has_token,
        sleep=sleeps.append,
    )


class Flaky:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_retry_after_is_waited_exactly_then_the_call_succeeds() -> None:
    sleeps: list[float] = []
    call = Flaky(Refused(429, {"Retry-After": "7"}, "Too Many Requests"))
    assert make_guard(sleeps).call("o/r", call) == "ok"
    assert (call.calls, sleeps) == (2, [7.0])


def test_rate_limit_reset_header_sets_the_wait() -> None:
    sleeps: list[float] = []
    reset = str(int(time.time()) + 20)
    call = Flaky(Refused(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, "API rate limit exceeded"))
    assert make_guard(sleeps).call("o/r", call) == "ok"
    assert 19.0 <= sleeps[0] <= 22.0


def test_a_reset_beyond_the_bound_fails_at_once_with_a_clear_line() -> None:
    sleeps: list[float] = []
    reset = str(int(time.time()) + 3600)
    call = Flaky(Refused(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, "rate limit"))
    with pytest.raises(ProviderError) as err:
        make_guard(sleeps, max_wait=60).call("o/r", call)
    assert (call.calls, sleeps) == (1, [])
    message = str(err.value)
    assert message.startswith("o/r: GitHub rate limit exceeded (HTTP 403); it resets in ")
    assert "ci.max_wait_s=60" in message


def test_retries_are_bounded_and_transient_errors_back_off() -> None:
    sleeps: list[float] = []
    call = Flaky(*[Refused(503, {}, "Service Unavailable") for _ in range(10)])
    with pytest.raises(ProviderError, match="answered HTTP 503: Service Unavailable"):
        make_guard(sleeps, retries=3).call("o/r", call)
    assert call.calls == 4
    assert len(sleeps) == 3
    assert all(0 < s <= 30 for s in sleeps)


@pytest.mark.parametrize(
    ("status", "has_token", "says"),
    [
        (401, False, "GitHub needs a token (HTTP 401): set CIMEDIC_GITHUB_TOKEN (Actions: read)"),
        (401, True, "GitHub rejected the token (HTTP 401): check CIMEDIC_GITHUB_TOKEN (Actions: read)"),
        (403, True, "GitHub refused access (HTTP 403): the token in CIMEDIC_GITHUB_TOKEN needs Actions: read"),
        (404, True, "not found on GitHub (HTTP 404): check the URL, or the token in CIMEDIC_GITHUB_TOKEN"),
    ],
)
def test_auth_failures_name_the_token_setting_and_scopes(status: int, has_token: bool, says: str) -> None:
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as err:
        make_guard(sleeps, has_token=has_token).call("https://github.com/o/r/actions/runs/1", Flaky(Refused(status)))
    assert says in str(err.value)
    assert sleeps == []


def test_writes_name_the_write_scopes() -> None:
    with pytest.raises(ProviderError, match="needs Actions: write"):
        make_guard([]).call("o/r", Flaky(Refused(403, {}, "Resource not accessible by integration")), write=True)


def test_secrets_in_platform_messages_are_redacted() -> None:
    leaked = "bad request for https://x?token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    with pytest.raises(ProviderError) as err:
        make_guard([]).call("o/r", Flaky(Refused(400, {}, leaked)))
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in str(err.value)


def test_no_answer_is_retried_then_reported_as_unreachable() -> None:
    sleeps: list[float] = []
    with pytest.raises(ProviderError, match=r"cannot reach GitHub at https://api\.github\.com: Connection refused"):
        make_guard(sleeps, retries=1).call("o/r", Flaky(*[Refused(None, {}, "Connection refused")] * 3))
    assert len(sleeps) == 1


def test_exceptions_that_are_not_http_failures_propagate_unchanged() -> None:
    with pytest.raises(KeyError):
        make_guard([]).call("o/r", Flaky(KeyError("bug")))


def test_wait_headers() -> None:
    assert asked_wait({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, now=1_792_567_670.0) == 10.0
    assert asked_wait({"RateLimit-Reset": "1000"}, now=990.0) == 11.0
    assert asked_wait({}) is None
    assert is_rate_limited(HttpFailure(429))
    assert not is_rate_limited(HttpFailure(403, {}, "Resource not accessible"))


def chunks(total: int, size: int = 1 << 16) -> list[bytes]:
    return [b"x" * min(size, total - i) for i in range(0, total, size)]


def test_stream_to_file_writes_whole_logs_and_cuts_at_the_bound(tmp_path: Path) -> None:
    whole = stream_to_file(iter(chunks(200_000)), tmp_path / "a" / "job.log", max_bytes=1_000_000)
    assert (whole.size, whole.truncated, (tmp_path / "a" / "job.log").stat().st_size) == (200_000, False, 200_000)
    cut = stream_to_file(iter(chunks(200_000)), tmp_path / "cut.log", max_bytes=100_000)
    assert (cut.size, cut.truncated, (tmp_path / "cut.log").stat().st_size) == (100_000, True, 100_000)


def test_an_interrupted_download_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> list[bytes]:
        raise ConnectionError("reset by peer")

    def stream() -> Iterator[bytes]:
        yield b"first chunk\n"
        broken()

    with pytest.raises(ConnectionError):
        stream_to_file(stream(), tmp_path / "job.log", max_bytes=1_000)
    assert list(tmp_path.iterdir()) == []

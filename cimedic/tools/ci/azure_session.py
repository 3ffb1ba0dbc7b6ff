"""How cimedic's rules reach every HTTP session the azure-devops SDK opens, and how its failures read.

msrest config is per client, but ``Connection`` resolves resource areas with a ``LocationClient`` it
builds itself, with msrest's defaults (three urllib3 retries with backoff on connection errors, 408
and 5xx, and a 100 s timeout). The credentials object is the one thing msrest applies to every
session, so it also mounts an adapter without retries and with cimedic's timeout, and a response hook.

The SDK keeps no status code or headers on its exceptions (``_handle_error`` raises
``AzureDevOpsClientRequestError("... Operation returned a 429 status code.")``, with no Retry-After),
and ``get_builds`` drops the ``x-ms-continuationtoken`` header. The hook sees the response first: an
error answer becomes an ``AzureHttpError`` carrying status, headers and Azure's message, and the
headers of the last answer stay readable for paging.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import requests
from msrest.exceptions import ClientRequestError
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests.models import PreparedRequest, Response

from cimedic.tools.ci.guard import HttpFailure

ERROR_BODY_MAX = 16 * 1024
# Connection refused, DNS, TLS, timeouts, and a body cut off mid-stream: worth another try.
_NO_ANSWER = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class AzureHttpError(Exception):
    """An Azure DevOps error answer as the wire had it (the SDK's own exceptions lose status and headers)."""

    def __init__(self, status: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.headers = dict(headers)
        self.message = message


class _Adapter(HTTPAdapter):
    """No transport-level retries (the guard is the one retry policy) and cimedic's timeout on every request."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(max_retries=0)
        self.timeout_s = timeout_s

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        return super().send(request, stream=stream, timeout=self.timeout_s, verify=verify, cert=cert, proxies=proxies)


def _azure_message(response: Response) -> str:
    """Azure's own words for an error: the ``message`` of its JSON error body, else the reason phrase."""
    content_type = response.headers.get("Content-Type", "")
    body = b""
    if "json" in content_type or "text/plain" in content_type:
        body = next(response.iter_content(ERROR_BODY_MAX), b"")
    response.close()
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return str(parsed["message"])
    elif body:
        return body.decode("utf-8", "replace")
    return response.reason or ""


class AzureSession:
    """PAT credentials for msrest (anonymous without a token) that also set up each session it signs."""

    def __init__(self, token: str | None, timeout_s: float) -> None:
        self._auth = HTTPBasicAuth("", token) if token is not None else None
        self._timeout_s = timeout_s
        self._seen = threading.local()

    def signed_session(self, session: requests.Session | None = None) -> requests.Session:
        # msrest calls this before every request, on the session it is about to use.
        session = session or requests.Session()
        if self._auth is not None:
            session.auth = self._auth
        if not isinstance(session.adapters.get("https://"), _Adapter):
            adapter = _Adapter(self._timeout_s)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        hooks = session.hooks.setdefault("response", [])
        if self._on_response not in hooks:
            hooks.append(self._on_response)
        return session

    def _on_response(self, response: Response, *args: Any, **kwargs: Any) -> Response:
        self._seen.headers = response.headers
        if response.status_code >= 400:
            raise AzureHttpError(response.status_code, response.headers, _azure_message(response))
        if response.status_code == 203 and "html" in response.headers.get("Content-Type", ""):
            # Azure's answer to credentials it does not accept when it would rather show a sign-in page.
            raise AzureHttpError(401, response.headers, "the sign-in page instead of data (203)")
        return response

    def last_header(self, name: str) -> str | None:
        """A header of the last answer on this thread (the SDK's list calls drop continuation tokens)."""
        headers: Mapping[str, str] | None = getattr(self._seen, "headers", None)
        return headers.get(name) if headers is not None else None


def classify(exc: BaseException) -> HttpFailure | None:
    """What an exception from the SDK (or from a log stream) says about the HTTP exchange."""
    if isinstance(exc, AzureHttpError):
        return HttpFailure(exc.status, exc.headers, exc.message)
    if isinstance(exc, _NO_ANSWER):
        return HttpFailure(None, {}, str(exc))
    # msrest wraps requests' own errors into ClientRequestError(message, inner_exception).
    inner = getattr(exc, "inner_exception", None)
    if isinstance(exc, ClientRequestError) and isinstance(inner, _NO_ANSWER):
        return HttpFailure(None, {}, str(inner))
    return None

"""How cimedic's rules reach every HTTP session the azure-devops SDK opens, and how its failures read.

msrest config is per client, but ``Connection`` resolves resource areas with a ``LocationClient`` it
builds itself, with msrest's defaults (three urllib3 retries with backoff on connection errors, 408
and 5xx, and a 100 s timeout). The credentials object is the one thing msrest applies to every
session, so it also mounts an adapter without retries and with cimedic's timeout, and a response hook.

The SDK keeps no status code or headers on its exceptions (``_handle_error`` raises
``AzureDevOpsClientRequestError("... Operation returned a 429 status code.")``, with no Retry-After),
and ``get_builds`` drops the ``x-ms-continuationtoken`` header. The hook sees the response first: an
error answer becomes an ``AzureHttpError`` carrying status, headers and Azure's message, and the
headers of the last answer stay readable for paging. It also checks the route metadata (``OPTIONS
{collection}/_apis``, the SDK's first request to a URL): a URL that is no Azure DevOps collection answers
it with a web page, which msrest would only report as a ``DeserializationError``.

A server that answers the metadata but lacks a route the SDK needs (an old TFS) makes the SDK raise
``ValueError("API resource location ... is not registered on ...")``; ``classify`` names the API.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import requests

# msrest raises azure-core's DeserializationError (msrest.exceptions imports it from there, implicitly).
from azure.core.exceptions import DeserializationError
from msrest.exceptions import ClientRequestError
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests.models import PreparedRequest, Response

from cimedic.tools.ci.guard import HttpFailure

ERROR_BODY_MAX = 16 * 1024
# Connection refused, DNS, TLS, timeouts, and a body cut off mid-stream: worth another try.
_NO_ANSWER = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_UNREGISTERED = re.compile(r"^API resource location ([0-9a-fA-F-]{36}) is not registered on ")
# The routes cimedic uses (location ids of the released 7.0 clients), by what they serve.
_APIS = {
    "e81700f7-3be2-46de-8624-2eb35882fcaa": "resource areas",
    "0cd358e1-9217-4d94-8269-1c1ee6f93dcf": "builds",
    "8baac422-4c6e-4de5-8532-db96d92acffa": "build timelines",
    "35a80daf-7f30-45fc-86e8-6b813d9c90df": "build logs",
    "dbeaf647-6167-421a-bda9-c9327b25e2e6": "build definitions",
    "cadb3810-d47d-4a3c-a234-fe5f3be50138": "test runs",
    "4637d869-3a76-4468-8057-0bb02aa385cf": "test results",
    "ab6e2e5d-a0b7-4153-b64a-a4efe0d49449": "pull request threads",
    "8572b1fc-2482-47fa-8f74-7e3ed53ee54b": "environments",
    "51bb5d21-4305-4ea6-9dbb-b7488af73334": "environment deployment records",
}


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


def _metadata_problem(response: Response) -> str | None:
    """Why a 2xx answer to ``OPTIONS {url}/_apis`` is not Azure DevOps route metadata, or None when it is."""
    if response.request.method != "OPTIONS" or not 200 <= response.status_code < 300:
        return None  # redirects are followed, and the metadata answer that ends them is checked
    base = (response.url or "").split("?", 1)[0].removesuffix("/_apis")
    if "json" not in response.headers.get("Content-Type", ""):
        return f"{base} is not an Azure DevOps server or collection URL (the _apis metadata is not JSON)"
    try:
        # Small, and read whole by msrest right after in any case (requests keeps the content).
        parsed = json.loads(response.content)
    except ValueError:
        return f"{base} is not an Azure DevOps server or collection URL (the _apis metadata is not JSON)"
    if not isinstance(parsed, dict) or not isinstance(parsed.get("value"), list):
        return f"{base} is not an Azure DevOps server or collection URL (the _apis metadata lists no APIs)"
    return None


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
        problem = _metadata_problem(response)
        if problem is not None:
            # Reported as the answer it was (2xx, not what the SDK needs), as Jenkins' non-JSON answers are.
            raise AzureHttpError(response.status_code, response.headers, problem)
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
    # An answer, but not one the SDK can use: status 200 words it "answered HTTP 200: ..." and is not retried.
    unregistered = _UNREGISTERED.match(str(exc)) if isinstance(exc, ValueError) else None
    if unregistered:
        api = _APIS.get(unregistered.group(1).lower(), f"the route {unregistered.group(1)}")
        return HttpFailure(200, {}, f"this Azure DevOps server has no API for {api}; it may be too old")
    if isinstance(exc, DeserializationError):
        # A 2xx answer that is not the JSON the API promises (a proxy's or portal's page).
        return HttpFailure(200, {}, f"the answer is not Azure DevOps JSON: {exc}")
    return None

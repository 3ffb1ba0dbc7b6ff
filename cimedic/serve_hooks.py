"""The webhook receivers' checks and payloads: who sent it (constant-time signature and token
checks) and which failed run it names, per platform.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from cimedic.errors import CimedicError, one_line
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.sweep_ledger import Candidate

TOKEN_HEADER = "x-cimedic-token"
GITHUB_FAILED = {"failure", "timed_out", "startup_failure"}
JENKINS_FAILED = {"FAILURE", "UNSTABLE"}
JENKINS_DONE = {"COMPLETED", "FINALIZED"}


# -- the webhooks ---------------------------------------------------------------------------------------


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.status, self.reason, self.detail = status, reason, detail or reason


@dataclass(frozen=True)
class Hook:
    """What a verified webhook says: a failed run's URL, or why it is of no interest."""

    url: str | None = None
    attempt: int | None = None
    branch: str | None = None
    ignored: str | None = None


def _equal(given: str | None, secret: SecretStr) -> bool:
    # compare_digest on bytes: constant time over the secret's length, any characters.
    return given is not None and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())


def _secret(secret: SecretStr | None) -> SecretStr:
    if secret is None or not secret.get_secret_value():
        raise Rejected(401, "not-configured", "this receiver has no secret configured")
    return secret


def verify_github(headers: Mapping[str, str], body: bytes, secret: SecretStr | None) -> None:
    key = _secret(secret).get_secret_value().encode()
    given = headers.get("x-hub-signature-256")
    if not given:
        raise Rejected(401, "missing-signature")
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Rejected(401, "bad-signature")


def verify_token(given: str | None, secret: SecretStr | None) -> None:
    expected = _secret(secret)
    if not given:
        raise Rejected(401, "missing-token")
    if not _equal(given, expected):
        raise Rejected(401, "bad-token")


def _basic_password(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def verify_azure(headers: Mapping[str, str], secret: SecretStr | None) -> None:
    verify_token(_basic_password(headers.get("authorization")) or headers.get(TOKEN_HEADER), secret)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def github_hook(headers: Mapping[str, str], payload: Any) -> Hook:
    event = headers.get("x-github-event", "")
    if event == "ping":
        return Hook(ignored="ping")
    if event != "workflow_run":
        return Hook(ignored=f"event {event or 'unnamed'}")
    run = _get(payload, "workflow_run")
    if _get(payload, "action") != "completed" or _get(run, "conclusion") not in GITHUB_FAILED:
        return Hook(ignored=f"workflow_run {_get(payload, 'action')} {_get(run, 'conclusion')}")
    attempt = _get(run, "run_attempt")
    return Hook(
        url=_get(run, "html_url"),
        attempt=attempt if isinstance(attempt, int) else None,
        branch=_get(run, "head_branch"),
    )


def gitlab_hook(headers: Mapping[str, str], payload: Any) -> Hook:
    if _get(payload, "object_kind") != "pipeline":
        return Hook(ignored=f"event {headers.get('x-gitlab-event') or _get(payload, 'object_kind')}")
    attrs = _get(payload, "object_attributes")
    if _get(attrs, "status") != "failed":
        return Hook(ignored=f"pipeline {_get(attrs, 'status')}")
    url = _get(attrs, "url")
    web, pipeline = _get(payload, "project", "web_url"), _get(attrs, "id")
    if not url and web and pipeline is not None:
        url = f"{str(web).rstrip('/')}/-/pipelines/{pipeline}"
    return Hook(url=url, branch=_get(attrs, "ref"))


def azure_hook(payload: Any) -> Hook:
    if _get(payload, "eventType") != "build.complete":
        return Hook(ignored=f"event {_get(payload, 'eventType')}")
    build = _get(payload, "resource")
    # Build 2.0 payloads say result=failed (status=completed); older ones put the result in status.
    if "failed" not in (_get(build, "result"), _get(build, "status")):
        return Hook(ignored=f"build {_get(build, 'result') or _get(build, 'status')}")
    url = _get(build, "_links", "web", "href")
    api, build_id = _get(build, "url"), _get(build, "id")
    if not url and isinstance(api, str) and "/_apis/build/" in api and build_id is not None:
        url = f"{api.split('/_apis/build/')[0]}/_build/results?buildId={build_id}"
    branch = _get(build, "sourceBranch")
    return Hook(url=url, branch=branch.removeprefix("refs/heads/") if isinstance(branch, str) else None)


def jenkins_hook(payload: Any, jenkins_url: str | None) -> Hook:
    """The Notification plugin's JSON format::

        {"name": "app", "url": "job/app/",
         "build": {"full_url": "https://ci.example.com/job/app/42/", "number": 42, "url": "job/app/42/",
                   "phase": "FINALIZED", "status": "FAILURE", "scm": {"branch": "origin/main", "commit": "…"}}}

    ``full_url`` needs Jenkins' root URL set; without it ``url`` is joined to CIMEDIC_JENKINS_URL.
    The plugin sends COMPLETED and FINALIZED for one build: the second is a repeat and is dropped.
    """
    build = _get(payload, "build")
    phase, status = _get(build, "phase"), _get(build, "status")
    if phase not in JENKINS_DONE or status not in JENKINS_FAILED:
        return Hook(ignored=f"build {phase} {status}")
    url = _get(build, "full_url")
    relative = _get(build, "url")
    if not url and jenkins_url and isinstance(relative, str):
        url = f"{jenkins_url.rstrip('/')}/{relative.lstrip('/')}"
    branch = _get(build, "scm", "branch")
    return Hook(url=url, branch=branch.removeprefix("origin/") if isinstance(branch, str) else None)


def candidate(hook: Hook, settings: Settings) -> Candidate:
    from cimedic.tools.ci.urls import parse_run_url

    if not hook.url or not isinstance(hook.url, str):
        raise Rejected(422, "no-run-url", "the payload names no run URL")
    try:
        ref = parse_run_url(hook.url, settings)
    except CimedicError as exc:
        raise Rejected(422, "unknown-run-url", redact(one_line(exc))[:300]) from exc
    return Candidate(
        platform=ref.platform,
        base_url=ref.base_url,
        project=ref.project,
        run_id=ref.run_id,
        attempt=hook.attempt if isinstance(hook.attempt, int) and hook.attempt > 0 else 1,
        url=hook.url,
        branch=hook.branch[:300] if isinstance(hook.branch, str) else None,  # payloads are not trusted
    )

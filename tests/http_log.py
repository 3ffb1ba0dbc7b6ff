"""What a local platform server (pytest-httpserver) was asked: every call, the writes among them."""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Response


def calls(server: HTTPServer) -> list[tuple[str, str, Any]]:
    return [(req.method, req.path, req.get_json(silent=True)) for req, _ in server.log]


def writes(server: HTTPServer) -> list[tuple[str, str, Any]]:
    return [call for call in calls(server) if call[0] != "GET"]


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")

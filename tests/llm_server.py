"""A local OpenAI-compatible chat-completions server that replays scripted answers.

The crew reaches it exactly as production reaches a provider: CrewAI -> litellm -> HTTP. Answers are
queued per agent role (the system prompt names the role), so a test scripts each agent's turns
without depending on the order CrewAI interleaves them. An answer is text, tool calls, a raw body
(malformed JSON on the wire) or an HTTP error. Every request body is kept for assertions.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ROLES = {
    "rca": "CI failure root-cause analyst",
    "flaky": "Flaky test investigator",
    "plan": "CI remediation planner",
    "report": "CI incident reporter",
}


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raw: str | None = None  # sent as the HTTP body as-is
    status: int = 200
    prompt_tokens: int = 400
    completion_tokens: int = 60


def say(content: str) -> Reply:
    return Reply(content=content)


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[(name, arguments)])


class ScriptedLLM:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.queues: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        for path in ("/v1/chat/completions", "/chat/completions"):
            server.expect_request(path, method="POST").respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def script(self, agent: str, *replies: Reply) -> None:
        """Queue replies for one agent (a key of ROLES)."""
        self.queues[agent].extend(replies)

    def requests_of(self, agent: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if _role_of(r) == agent]

    def prompts_text(self) -> str:
        return "\n".join(json.dumps(r["messages"], ensure_ascii=False) for r in self.requests)

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        self.requests.append(body)
        agent = _role_of(body)
        queue = self.queues.get(agent) if agent else None
        if not queue:
            return Response(json.dumps({"error": {"message": f"no scripted reply for {agent!r}"}}), status=500)
        reply = queue.popleft()
        if reply.raw is not None:
            return Response(reply.raw, status=reply.status, content_type="application/json")
        if reply.status != 200:
            return Response(json.dumps({"error": {"message": "scripted failure"}}), status=reply.status)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}_{i}",
                    "type": "function",
                    "function": {"name": n, "arguments": json.dumps(a)},
                }
                for i, (n, a) in enumerate(reply.tool_calls)
            ]
        completion = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
        return Response(json.dumps(completion), status=200, content_type="application/json")


def _role_of(body: dict[str, Any]) -> str | None:
    system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
    for key, role in ROLES.items():
        if isinstance(system, str) and system.startswith(f"You are {role}"):
            return key
    return None

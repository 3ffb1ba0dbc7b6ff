"""A local OpenAI-compatible chat-completions server that replays scripted answers.

The crew reaches it exactly as it reaches a provider: CrewAI -> litellm -> HTTP. It serves the
offline eval harness and benchmarks (recorded answers, no key, no network) and the tests. Answers
are queued per agent role (the system prompt names the role), so a script gives each agent its
turns without depending on how CrewAI interleaves them. An answer is text, tool calls, a raw body
(malformed JSON on the wire) or an HTTP error. Every request body is kept.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cimedic.crew import prompts

# Script keys for the agents of prompts/agents.yaml.
KEYS = {
    "rca_analyst": "rca",
    "flakiness_investigator": "flaky",
    "remediation_planner": "plan",
    "reporter": "report",
    "chat_assistant": "chat",
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


def role_of(body: dict[str, Any]) -> str | None:
    """The script key of the agent that sent this request, from its system prompt."""
    system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
    for name, text in prompts.agents().items():
        if isinstance(system, str) and system.startswith(f"You are {text.role}"):
            return KEYS.get(name, name)
    return None


class ReplayLLM:
    """``with ReplayLLM() as llm:`` serves on 127.0.0.1 at ``llm.base_url`` until the block ends."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[dict[str, Any]] = []
        self.fallback: Reply | None = None  # answered when an agent's queue is empty
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ReplayLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, agent: str, *replies: Reply) -> None:
        """Queue replies for one agent (a value of KEYS)."""
        with self._lock:
            self.queues[agent].extend(replies)

    def requests_of(self, agent: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if role_of(r) == agent]

    def prompts_text(self) -> str:
        return "\n".join(json.dumps(r["messages"], ensure_ascii=False) for r in self.requests)

    def answer(self, body: dict[str, Any]) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(body)
            agent = role_of(body)
            queue = self.queues.get(agent) if agent else None
            reply = queue.popleft() if queue else self.fallback
            number = len(self.requests)
        if reply is None:
            return 500, json.dumps({"error": {"message": f"no scripted reply for {agent!r}"}}).encode()
        if reply.raw is not None:
            return reply.status, reply.raw.encode()
        if reply.status != 200:
            return reply.status, json.dumps({"error": {"message": "scripted failure"}}).encode()
        return 200, json.dumps(_completion(reply, body, number)).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and benches own stderr
                return

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                status, data = replay.answer(json.loads(self.rfile.read(size) or b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _completion(reply: Reply, body: dict[str, Any], number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{number}_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": body.get("model", "replay"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }

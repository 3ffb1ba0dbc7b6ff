"""The Slack bot over real HTTP: uvicorn serves the ASGI app on a free port, requests are signed as
Slack signs them (v0 HMAC-SHA256 with the signing secret), and the Slack Web API is a local server
answering the documented payloads of auth.test, chat.postMessage, chat.update and chat.postEphemeral.
Real actions use the GitHub Actions run of test_heal_retry (PyGithub over HTTP): an approved retry
POSTs the re-run, and that POST is counted."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import test_ci_github as github
import uvicorn
from conftest import EXAMPLES
from fastapi import FastAPI
from pytest_httpserver import HTTPServer
from test_heal_retry import GitHubRun, writes
from werkzeug import Request, Response

from cimedic.chatops.slack_app import asgi_app, build_app
from cimedic.chatops.slack_handlers import run_url_in
from cimedic.errors import InputError
from cimedic.heal.audit import AuditLog, State
from cimedic.models import Action, ActionKind, Diagnosis, RemediationPlan
from cimedic.settings import get_settings

pytest_plugins = ["memory_fixtures"]

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
APPROVER, OTHER, BOT_USER = "UAPPROVER1", "UBYSTANDER", "U0CIMEDIC"
CHANNEL = "C0CIFAILS"
RUN_URL = f"https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID}"
RERUN = ("POST", f"{github.RUN_PATH}/rerun-failed-jobs", None)
WAIT_S = 90.0
LEAKY = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"  # shaped like a real token: the redactor must catch it


class SlackAPI:
    """Slack's Web API as documented (https://api.slack.com/methods), recording what the bot sent."""

    def __init__(self) -> None:
        self.server = HTTPServer(host="127.0.0.1", threaded=True)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = itertools.count(1)
        self.server.expect_request("/api/auth.test").respond_with_handler(self.auth_test)
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            self.server.expect_request(f"/api/{method}", method="POST").respond_with_handler(self.chat)
        self.server.expect_request("/respond/T0TEAM/1/hook", method="POST").respond_with_handler(self.respond)

    @property
    def url(self) -> str:
        return self.server.url_for("/api/")

    def auth_test(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
        return _json(
            {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme",
                "user": "cimedic",
                "team_id": "T0TEAM",
                "user_id": BOT_USER,
                "bot_id": "B0CIMEDIC",
                "is_enterprise_install": False,
            }
        )

    def chat(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[1]
        body = request.get_json()
        self.calls.append((method, body))
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "chat.postEphemeral":
            return _json({"ok": True, "message_ts": ts})
        if method == "chat.update":
            return _json({"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text", "")})
        message = {"type": "message", "subtype": "bot_message", "bot_id": "B0CIMEDIC", "text": body["text"], "ts": ts}
        return _json({"ok": True, "channel": body["channel"], "ts": ts, "message": message})

    def respond(self, request: Request) -> Response:
        self.calls.append(("response_url", request.get_json()))
        return Response("ok", content_type="text/plain")

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [body for name, body in self.calls if name == method]

    def wait(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_S
        while len(self.sent(method)) < count:
            assert time.monotonic() < deadline, f"no {count} {method} call(s) in {WAIT_S}s: {self.calls}"
            time.sleep(0.05)
        return self.sent(method)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), content_type="application/json; charset=utf-8")


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackAPI]:
    api = SlackAPI()
    api.server.start()
    monkeypatch.setenv("CIMEDIC_SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("CIMEDIC_SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("CIMEDIC_SLACK_API_URL", api.url)
    monkeypatch.setenv("CIMEDIC_SLACK_APPROVERS", json.dumps([APPROVER]))
    get_settings.cache_clear()
    try:
        yield api
    finally:
        api.server.stop()


@pytest.fixture
def gh_run(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> GitHubRun:
    monkeypatch.setenv("CIMEDIC_GITHUB_API_URL", github.api(httpserver))
    monkeypatch.setenv("CIMEDIC_GITHUB_TOKEN", github.TOKEN)
    get_settings.cache_clear()
    return GitHubRun(httpserver)


@contextmanager
def served(mounted: bool = False, **build: Any) -> Iterator[httpx.Client]:
    """The ASGI app under uvicorn in a thread, on a free port; yields a client for it.

    ``mounted``: inside another app at /slack, as ``cimedic serve`` mounts ``cimedic.chatops.asgi_app``."""
    settings = get_settings()
    bot: Any = asgi_app(settings, app=build_app(settings, **build))
    if mounted:
        parent = FastAPI()
        parent.mount("/slack", bot)
        bot = parent
    config = uvicorn.Config(bot, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def signed(body: str, content_type: str, *, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def post(client: httpx.Client, body: str, content_type: str, **sign: Any) -> httpx.Response:
    return client.post("/slack/events", content=body, headers=signed(body, content_type, **sign))


FORM = "application/x-www-form-urlencoded"


def command(text: str, user: str = OTHER, response_url: str = "https://hooks.slack.com/commands/T0TEAM/1/x") -> str:
    """A slash command as Slack POSTs it (https://api.slack.com/interactivity/slash-commands)."""
    return urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0TEAM",
            "team_domain": "acme",
            "channel_id": CHANNEL,
            "channel_name": "ci-failures",
            "user_id": user,
            "user_name": "dev",
            "command": "/cimedic",
            "text": text,
            "api_app_id": "A0CIMEDIC",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )


def slash(client: httpx.Client, slack: SlackAPI, text: str, user: str = OTHER) -> httpx.Response:
    return post(client, command(text, user, slack.server.url_for("/respond/T0TEAM/1/hook")), FORM)


def click(client: httpx.Client, action_id: str, value: str, user: str, message_ts: str) -> httpx.Response:
    """A block_actions interaction (https://api.slack.com/reference/interaction-payloads/block-actions)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0TEAM"},
        "api_app_id": "A0CIMEDIC",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": "T0TEAM", "domain": "acme"},
        "channel": {"id": CHANNEL, "name": "ci-failures"},
        "message": {"type": "message", "user": BOT_USER, "ts": message_ts, "text": "..."},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/unused",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "text": {"type": "plain_text", "text": "x"},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return post(client, urlencode({"payload": json.dumps(payload)}), FORM)


def mention(client: httpx.Client, text: str, ts: str = "1700000100.000100") -> httpx.Response:
    """An app_mention event (https://api.slack.com/events/app_mention) in the Events API envelope."""
    event = {"type": "app_mention", "user": OTHER, "text": text, "ts": ts, "channel": CHANNEL, "event_ts": ts}
    envelope = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": "T0TEAM",
        "api_app_id": "A0CIMEDIC",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0MENTION1",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0TEAM", "user_id": BOT_USER, "is_bot": True}],
    }
    return post(client, json.dumps(envelope), "application/json")


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every visible string of a message (section/context/header texts and button labels)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """action_id (qualified by block for per-action buttons) -> value."""
    found = {}
    for block in blocks:
        if block["type"] == "actions":
            for element in block["elements"]:
                found[f"{block['block_id']}/{element['action_id']}"] = element["value"]
    return found


def with_retry(investigate: Callable[..., Diagnosis]) -> Callable[[str], Diagnosis]:
    """The real investigation plus a retry asked for, as `cimedic heal --action retry` adds it."""

    def run(target: str) -> Diagnosis:
        diag = investigate(target, offline=True)
        plan = diag.plan or RemediationPlan()
        retry = Action(kind=ActionKind.RETRY, target="run", reason="asked for by a person", source="human")
        return diag.model_copy(update={"plan": plan.model_copy(update={"actions": [retry, *plan.actions]})})

    return run


def investigated_run(client: httpx.Client, slack: SlackAPI) -> tuple[dict[str, Any], int, str]:
    """Slash-command the GitHub run; (posted message, the retry's action id, its button value)."""
    assert slash(client, slack, f"investigate {RUN_URL}").status_code == 200
    [message] = slack.wait("chat.postMessage")
    [value] = [v for k, v in buttons(message["blocks"]).items() if k.endswith("/cimedic_approve")]
    return message, int(value.split(":")[1]), value


@pytest.fixture
def flow_investigate() -> Callable[..., Diagnosis]:
    from cimedic.crew.flow import investigate

    return investigate


# -- verification ------------------------------------------------------------------------------------


def test_unsigned_stale_or_forged_requests_get_401_and_nothing_runs(slack: SlackAPI) -> None:
    asked: list[str] = []

    def investigate(target: str) -> Diagnosis:
        asked.append(target)
        raise AssertionError("must not be reached")

    with served(investigate=investigate) as client:
        body = command(f"investigate {RUN_URL}")
        stale = int(time.time()) - 6 * 60  # correctly signed, but older than Slack's 5 minutes
        assert post(client, body, FORM, ts=stale).status_code == 401
        assert post(client, body, FORM, secret="not-the-signing-secret").status_code == 401
        assert client.post("/slack/events", content=body, headers={"Content-Type": FORM}).status_code == 401
        tampered = signed(body, FORM)
        assert client.post("/slack/events", content=body + "&x=1", headers=tampered).status_code == 401
        forged_click = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": APPROVER}})})
        assert post(client, forged_click, FORM, secret="guess").status_code == 401
        # Slack's URL check when the Events URL is configured: answered only when signed.
        check = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3", "type": "url_verification"})
        assert post(client, check, "application/json", secret="guess").status_code == 401
        answered = post(client, check, "application/json")
        assert answered.status_code == 200 and answered.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3"}
        time.sleep(0.5)  # a lazy listener, had one started, would have run by now
    assert asked == [] and slack.calls == []


def test_mounted_at_slack_the_endpoint_is_still_slack_events(slack: SlackAPI) -> None:
    from cimedic import chatops  # the contract `cimedic serve` uses: chatops.asgi_app(settings)

    assert chatops.asgi_app is asgi_app
    check = json.dumps({"token": "x", "challenge": "c0ffee", "type": "url_verification"})
    with served(mounted=True, investigate=lambda target: pytest.fail("no investigation")) as client:
        assert post(client, check, "application/json").json() == {"challenge": "c0ffee"}
        assert post(client, check, "application/json", secret="guess").status_code == 401
        assert "Usage" in slash(client, slack, "help").text


def test_a_missing_signing_secret_refuses_to_build_for_http(slack: SlackAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIMEDIC_SLACK_SIGNING_SECRET")
    get_settings.cache_clear()
    with pytest.raises(InputError, match="slack_signing_secret"):
        build_app(get_settings())
    # Socket Mode needs none: the app-level token authenticates the connection, not each request.
    assert build_app(get_settings(), socket_mode=True) is not None
    assert [name for name, _ in slack.calls] == []  # auth.test only (not recorded as a chat call)


# -- investigate ---------------------------------------------------------------------------------------


def test_the_slash_command_acks_before_investigating_then_posts_the_diagnosis(
    slack: SlackAPI, flow_investigate: Callable[..., Diagnosis]
) -> None:
    release = threading.Event()

    def slow(target: str) -> Diagnosis:
        assert release.wait(WAIT_S)
        return flow_investigate(target)

    with served(investigate=slow, local_root=EXAMPLES) as client:
        try:
            started = time.monotonic()
            acked = slash(client, slack, "investigate gha-timeout.log")
            assert time.monotonic() - started < 3.0
            assert acked.status_code == 200 and acked.text == "Investigating gha-timeout.log…"
            assert slack.sent("chat.postMessage") == []  # the investigation is still waiting
        finally:
            release.set()
        [message] = slack.wait("chat.postMessage")
    assert message["channel"] == CHANNEL
    shown = texts(message["blocks"])
    assert "CI failure: timeout" in shown
    assert "hit its timeout-minutes limit" in shown
    assert "```" in shown and "`gha-timeout.log:177`" in shown  # excerpt block, top evidence path:line
    # The knowledge base's timeout proposal cannot apply to a local log: shown, but nothing to approve.
    assert "*timeout*" in shown and "_skipped_" in shown and "cannot apply" in shown
    assert set(buttons(message["blocks"])) == {"cause/cimedic_cause_right", "cause/cimedic_cause_wrong"}
    assert [r.state for r in AuditLog(get_settings()).recent()] == [State.SKIPPED]


def test_commands_it_cannot_run_are_answered_in_the_ack(slack: SlackAPI) -> None:
    with served(investigate=lambda target: pytest.fail("nothing to investigate")) as client:
        assert "Usage" in slash(client, slack, "help").text
        # Without a local_root the bot reads no file on its server, whatever path is asked for.
        assert "Give a run URL" in slash(client, slack, "investigate /etc/passwd").text
    with served(investigate=lambda target: pytest.fail("outside"), local_root=EXAMPLES) as client:
        assert "No such run material" in slash(client, slack, "investigate ../pyproject.toml").text
    time.sleep(0.3)
    assert slack.sent("chat.postMessage") == []


def test_a_failed_investigation_is_told_to_the_asker_redacted(slack: SlackAPI) -> None:
    def broken(target: str) -> Diagnosis:
        raise InputError(target, f"the platform refused token {LEAKY}")

    with served(investigate=broken) as client:
        assert slash(client, slack, f"investigate {RUN_URL}").status_code == 200
        [told] = slack.wait("response_url")
    assert told["text"].startswith(f"cimedic could not investigate {RUN_URL}: ")
    assert LEAKY not in told["text"] and "[REDACTED:github-token]" in told["text"]
    assert slack.sent("chat.postMessage") == []


def test_log_text_is_redacted_and_cannot_ping_link_or_mention(slack: SlackAPI, tmp_path: Path) -> None:
    (tmp_path / "deploy.log").write_text(
        "Run ./deploy.sh\n"
        f"connecting with token {LEAKY}\n"
        f"Error: deploy failed <!channel> <@{BOT_USER}> approve <https://evil.example/x|Approve>\n"
        "##[error]Process completed with exit code 1.\n"
    )
    with served(local_root=tmp_path) as client:
        slash(client, slack, "investigate deploy.log")
        [message] = slack.wait("chat.postMessage")
    everything = json.dumps(message)
    assert LEAKY not in everything and "[REDACTED:github-token]" in everything
    assert "<!channel>" not in everything and f"<@{BOT_USER}>" not in everything and "<https://evil" not in everything
    assert "&lt;!channel&gt;" in texts(message["blocks"])
    assert buttons(message["blocks"]).keys() == {"cause/cimedic_cause_right", "cause/cimedic_cause_wrong"}


def test_a_mention_with_a_run_url_is_answered_in_its_thread(
    slack: SlackAPI, httpserver: HTTPServer, gh_run: GitHubRun, flow_investigate: Callable[..., Diagnosis]
) -> None:
    assert run_url_in(f"<@{BOT_USER}> look at <{RUN_URL}|this run> please") == RUN_URL
    azure = "https://dev.azure.com/o/p/_build/results?buildId=7&j=a"
    assert run_url_in(f"<{azure.replace('&', '&amp;')}>") == azure == run_url_in(f"investigate {azure}")
    with served(investigate=with_retry(flow_investigate)) as client:
        assert mention(client, f"<@{BOT_USER}> why did <{RUN_URL}> fail?").status_code == 200
        [message] = slack.wait("chat.postMessage")
        assert message["thread_ts"] == "1700000100.000100"
        assert "CI failure: test" in texts(message["blocks"])
        mention(client, f"<@{BOT_USER}> hello", ts="1700000200.000100")
        usage = slack.wait("chat.postMessage", 2)[1]
    assert usage["thread_ts"] == "1700000200.000100" and "Usage" in usage["text"]
    assert writes(httpserver) == []  # investigating proposes; nothing is written to GitHub


# -- approve / reject ------------------------------------------------------------------------------------


def test_only_an_approvers_click_executes_and_two_clicks_execute_once(
    slack: SlackAPI, httpserver: HTTPServer, gh_run: GitHubRun, flow_investigate: Callable[..., Diagnosis]
) -> None:
    audit = AuditLog(get_settings())
    with served(investigate=with_retry(flow_investigate)) as client:
        message, action_id, value = investigated_run(client, slack)
        assert audit.get(action_id).state == State.AWAITING  # type: ignore[union-attr]
        assert "policy: *approve*" in texts(message["blocks"])
        assert writes(httpserver) == []  # the dry-run heal sent nothing to GitHub

        assert click(client, "cimedic_approve", value, OTHER, "1700000000.000001").status_code == 200
        [refusal] = slack.wait("chat.postEphemeral")
        assert refusal["user"] == OTHER and "Only approvers" in refusal["text"]
        assert audit.get(action_id).state == State.AWAITING  # type: ignore[union-attr]
        assert writes(httpserver) == [] and slack.sent("chat.update") == []

        barrier = threading.Barrier(2)

        def approve() -> int:
            barrier.wait()
            return click(client, "cimedic_approve", value, APPROVER, "1700000000.000001").status_code

        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(approve())) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200, 200]
        slack.wait("chat.postEphemeral", 2)  # the losing click is told nothing was done
        updates = slack.wait("chat.update")
        deadline = time.monotonic() + WAIT_S
        while audit.get(action_id).state not in (State.EXECUTED, State.FAILED):  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
    assert writes(httpserver) == [RERUN]  # exactly one re-run for two clicks
    loser = slack.sent("chat.postEphemeral")[1]
    assert loser["user"] == APPROVER and loser["text"].startswith("Nothing done")
    record = audit.get(action_id)
    assert record is not None and record.state == State.EXECUTED
    assert any(e["actor"] == f"human:slack:{APPROVER}" and e["state"] == "approved" for e in audit.events(action_id))
    final = slack.sent("chat.update")[-1]
    assert final["ts"] == "1700000000.000001" and final["channel"] == CHANNEL
    shown = texts(final["blocks"])
    assert "_executed_" in shown and f"by <@{APPROVER}>" in shown
    assert not any(k.endswith("/cimedic_approve") for k in buttons(final["blocks"]))
    assert len(updates) >= 1


def test_a_rejected_action_cannot_be_approved_later(
    slack: SlackAPI, httpserver: HTTPServer, gh_run: GitHubRun, flow_investigate: Callable[..., Diagnosis]
) -> None:
    audit = AuditLog(get_settings())
    with served(investigate=with_retry(flow_investigate)) as client:
        _, action_id, value = investigated_run(client, slack)
        click(client, "cimedic_reject", value, APPROVER, "1700000000.000001")
        [update] = slack.wait("chat.update")
        assert "_rejected_" in texts(update["blocks"]) and not buttons(update["blocks"]).keys() - {
            "cause/cimedic_cause_right",
            "cause/cimedic_cause_wrong",
        }
        click(client, "cimedic_approve", value, APPROVER, "1700000000.000001")
        [refusal] = slack.wait("chat.postEphemeral")
    assert "is rejected, not awaiting approval" in refusal["text"]
    assert audit.get(action_id).state == State.REJECTED  # type: ignore[union-attr]
    assert writes(httpserver) == []
    assert [e["actor"] for e in audit.events(action_id) if e["state"] == "rejected"] == [f"human:slack:{APPROVER}"]


# -- cause feedback -------------------------------------------------------------------------------------


def test_right_cause_is_remembered_once_and_shown_next_time(
    slack: SlackAPI, home_with_onnx: Any, flow_investigate: Callable[..., Diagnosis]
) -> None:
    from cimedic.memory.store import IncidentStore

    with served(local_root=EXAMPLES) as client:
        slash(client, slack, "investigate gha-timeout.log")
        [message] = slack.wait("chat.postMessage")
        key = buttons(message["blocks"])["cause/cimedic_cause_right"]
        click(client, "cimedic_cause_right", key, OTHER, "1700000000.000001")
        assert "Only approvers" in slack.wait("chat.postEphemeral")[0]["text"]
        click(client, "cimedic_cause_right", key, APPROVER, "1700000000.000001")
        [update] = slack.wait("chat.update")
        assert f"Cause confirmed as right by <@{APPROVER}>" in texts(update["blocks"])
        assert "remembered as incident inc-" in slack.wait("chat.postEphemeral", 2)[1]["text"]
        click(client, "cimedic_cause_wrong", key, APPROVER, "1700000000.000001")
        assert "already confirmed" in slack.wait("chat.postEphemeral", 3)[2]["text"]
        [incident] = IncidentStore(get_settings()).list()
        assert incident.category == "timeout" and incident.outcome == "cause confirmed in Slack"
        slash(client, slack, "investigate gha-timeout.log")
        again = slack.wait("chat.postMessage", 2)[1]
    assert "*Similar incidents*" in texts(again["blocks"]) and incident.title[:40] in texts(again["blocks"])
    journal = (get_settings().home / "chatops" / "feedback.jsonl").read_text().splitlines()
    [event] = [json.loads(line) for line in journal]
    assert event["type"] == "feedback.given" and event["right"] and event["by"] == f"slack:{APPROVER}"
    assert len(slack.sent("chat.update")) == 1


def test_wrong_cause_counts_the_untried_proposals_as_wrong(
    slack: SlackAPI, httpserver: HTTPServer, gh_run: GitHubRun, flow_investigate: Callable[..., Diagnosis]
) -> None:
    audit = AuditLog(get_settings())
    with served(investigate=with_retry(flow_investigate)) as client:
        message, action_id, _ = investigated_run(client, slack)
        key = buttons(message["blocks"])["cause/cimedic_cause_wrong"]
        click(client, "cimedic_cause_wrong", key, APPROVER, "1700000000.000001")
        [update] = slack.wait("chat.update")
    assert f"Cause marked wrong by <@{APPROVER}>" in texts(update["blocks"])
    notes = [e for e in audit.events(action_id) if e["state"] == "feedback-wrong"]
    assert [n["actor"] for n in notes] == [f"human:slack:{APPROVER}"]
    assert audit.get(action_id).state == State.AWAITING  # type: ignore[union-attr]  # feedback executes nothing
    assert writes(httpserver) == []

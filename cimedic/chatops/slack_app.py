"""The Slack bot: ``/cimedic investigate <run>``, ``@cimedic <run URL>``, and the buttons on its answers.

Slack wants every request acknowledged within 3 seconds. The app runs with
``process_before_response=True`` and Bolt's *lazy listeners*: the ack function answers at once
(the HTTP response goes back as soon as it returns) and the slow part (investigating, approving
and executing) runs afterwards in Bolt's listener thread pool, replying through the Web API.
That works the same over HTTP (:func:`asgi_app`) and Socket Mode (:func:`run_socket_mode`).

Trust: requests are verified by Bolt (HMAC-SHA256 signature with the signing secret, timestamp no
older than 5 minutes; anything else gets 401 before a handler runs). Log text is only ever shown,
redacted and escaped; the only thing that executes an action is an Approve click by a user in
``slack_approvers``, and the audit log's atomic transition makes a second click a no-op.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from slack_bolt import App
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool

from cimedic.chatops.slack_blocks import APPROVE, CAUSE_RIGHT, CAUSE_WRONG, REJECT
from cimedic.chatops.slack_handlers import Investigator, SlackBot, default_investigate
from cimedic.errors import InputError
from cimedic.settings import Settings

COMMAND = "/cimedic"
BODY_MAX = 1024 * 1024  # Slack's payloads are a few KB; nothing bigger is read before verification


def _api_url(settings: Settings) -> str:
    return settings.slack_api_url.rstrip("/") + "/"


def build_app(
    settings: Settings,
    *,
    investigate: Investigator | None = None,
    client: WebClient | None = None,
    local_root: Path | None = None,
    socket_mode: bool = False,
) -> App:
    """The Bolt app. ``local_root``: a folder whose files ``/cimedic investigate PATH`` may read (default none)."""
    if client is None:
        if settings.slack_bot_token is None:
            raise InputError("slack_bot_token", "not set (CIMEDIC_SLACK_BOT_TOKEN or SLACK_BOT_TOKEN)")
        client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=_api_url(settings))
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    if not secret and not socket_mode:  # an empty secret would accept requests signed with an empty key
        raise InputError("slack_signing_secret", "not set (CIMEDIC_SLACK_SIGNING_SECRET or SLACK_SIGNING_SECRET)")
    bot = SlackBot(settings, client, investigate or default_investigate, local_root)
    app = App(
        client=client,
        signing_secret=secret or None,
        process_before_response=True,
        request_verification_enabled=not socket_mode,  # Socket Mode: the app-level token authenticates
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="cimedic-slack"),
    )
    app.command(COMMAND)(ack=bot.ack_command, lazy=[bot.run_command])
    app.event("app_mention")(ack=bot.ack_only, lazy=[bot.run_mention])
    for action_id in (APPROVE, REJECT):
        app.action(action_id)(ack=bot.ack_only, lazy=[bot.run_decision])
    for action_id in (CAUSE_RIGHT, CAUSE_WRONG):
        app.action(action_id)(ack=bot.ack_only, lazy=[bot.run_cause])
    return app


def events_router(app: App) -> APIRouter:
    """``POST /slack/events`` for the app, to include in any FastAPI app (``cimedic serve``)."""
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

    router = APIRouter()

    # /slack/events when served on its own; /events when mounted at /slack (``cimedic serve``), where
    # Starlette routes the mounted app on the path below the mount: Slack's URL is /slack/events either way.
    @router.post("/slack/events")
    @router.post("/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > BODY_MAX:
                return Response(status_code=413, content="request too large")
        # dispatch verifies, runs the ack and hands lazy work to Bolt's threads: off the event loop.
        bolt_response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    return router


def asgi_app(settings: Settings, *, app: App | None = None) -> FastAPI:
    """An ASGI app serving ``POST /slack/events`` (Slack's Events API, slash commands, interactivity).

    Serve it alone, or mount it at ``/slack`` in another app: the endpoint stays ``/slack/events``.
    Building it calls Slack's ``auth.test`` once (Bolt checks the bot token up front).
    """
    api = FastAPI(title="cimedic Slack bot", docs_url=None, redoc_url=None, openapi_url=None)
    api.include_router(events_router(app or build_app(settings)))
    return api


def run_socket_mode(settings: Settings, *, app: App | None = None) -> None:
    """Connect to Slack over Socket Mode (no public URL needed) and serve until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if settings.slack_app_token is None:
        raise InputError("slack_app_token", "not set: Socket Mode needs an app-level token (xapp-...)")
    bolt = app or build_app(settings, socket_mode=True)
    SocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]

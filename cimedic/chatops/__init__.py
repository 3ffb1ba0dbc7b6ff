"""Chat-ops: the Slack bot that investigates runs and lets allowlisted people approve actions.

``slack_app`` builds the Bolt app and its two entry points (HTTP via ASGI, Socket Mode);
``slack_handlers`` is what it does on commands, mentions and clicks; ``slack_blocks`` renders
messages; ``slack_state`` keeps what a posted message refers to and records feedback on a diagnosis.
"""

from cimedic.chatops.slack_app import asgi_app, build_app, events_router, run_socket_mode

__all__ = ["asgi_app", "build_app", "events_router", "run_socket_mode"]

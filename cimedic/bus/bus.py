# kombu ships py.typed but leaves most functions unannotated; only calls into kombu are exempt.
# mypy: untyped-calls-exclude=kombu
"""The event bus: typed events over kombu, so one code path serves memory:// and amqp:// alike.

Events go to the topic exchange ``cimedic`` with the event type as routing key; a consumer's queue
binds the topics it wants (``run.*``, ``#``). Delivery is at-least-once:

* publishing is persistent and, on AMQP, confirmed by the broker (``confirm_publish``), retried
  over connection errors by kombu's ``ensure``;
* a message is ACKed only after its handler returned, so a worker that dies mid-event leaves it
  to the broker to redeliver to another worker (prefetch 1: a worker holds one event at a time);
* a handler that raises gets the event again later, up to ``attempts`` times, then the event goes
  to ``<queue>.dead`` with the error in a header; an event that does not parse goes there at once.

Redelivery means a handler can see an event twice: ``Seen`` lets it drop repeats by event id.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kombu.connection import Connection
from kombu.entity import PERSISTENT_DELIVERY_MODE, Exchange, Queue, binding
from kombu.messaging import Consumer, Producer
from pydantic import ValidationError

from cimedic.bus import events

if TYPE_CHECKING:
    from kombu.message import Message

    from cimedic.settings import Settings

log = logging.getLogger(__name__)

MEMORY_URL = "memory://"
DEFAULT_QUEUE = "cimedic.events"
# How often a failed event was handled; carried on the copy re-queued after each failure.
ATTEMPT_HEADER = "x-cimedic-attempt"
ERROR_HEADER = "x-cimedic-error"
# Publishing rides out a broker restart of a few seconds, then gives up loudly.
RETRY_POLICY: dict[str, Any] = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
_JSON = {"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": PERSISTENT_DELIVERY_MODE}

Handler = Callable[[events.Event], object]


def _attempts(message: Message) -> int:
    try:
        return int(message.headers.get(ATTEMPT_HEADER, 0))
    except (TypeError, ValueError):  # a header someone else set: count from scratch, do not crash
        return 0


class Seen:
    """The last ``size`` event ids, oldest forgotten first: ``first(id)`` is False for a repeat."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first(self, event_id: str) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class Consumed:
    """What one ``consume`` call did."""

    handled: int = 0  # handler returned, message ACKed
    retried: int = 0  # handler raised, event re-queued for a later attempt
    dead: int = 0  # sent to the dead-letter queue (unparseable, or out of attempts)


class Bus:
    """Publish and consume typed events; not thread-safe (give each thread its own ``Bus``)."""

    def __init__(self, url: str = MEMORY_URL, *, exchange: str = "cimedic") -> None:
        self.url = url
        self.exchange = Exchange(exchange, type="topic", durable=True, delivery_mode=PERSISTENT_DELIVERY_MODE)
        self._conn: Connection | None = None
        self._producer: Producer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Bus:
        return cls(settings.bus_url or MEMORY_URL)

    def _connection(self) -> Connection:
        # confirm_publish makes py-amqp wait for the broker's ack of each publish; memory ignores it.
        return Connection(self.url, connect_timeout=5, transport_options={"confirm_publish": True})

    def queues(self, queue: str = DEFAULT_QUEUE, topics: Iterable[str] = ("#",)) -> tuple[Queue, Queue]:
        """The durable work queue bound to ``topics``, and its dead-letter queue."""
        bindings = [binding(self.exchange, routing_key=topic) for topic in topics]
        return Queue(queue, bindings=bindings, durable=True), Queue(f"{queue}.dead", durable=True)

    def declare(self, queue: str = DEFAULT_QUEUE, topics: Iterable[str] = ("#",)) -> None:
        """Create the exchange and queues, so events published before any consumer starts are kept."""
        with self._connection() as conn:
            conn.ensure_connection(**RETRY_POLICY)
            self.exchange(conn.default_channel).declare()
            for q in self.queues(queue, topics):
                q(conn.default_channel).declare()

    def publish(self, event: events.Event) -> None:
        if self._producer is None:
            self._conn = self._connection()
            self._producer = Producer(self._conn)
        self._producer.publish(
            event.model_dump_json().encode(),
            exchange=self.exchange,
            routing_key=event.type,
            message_id=event.id,
            declare=[self.exchange],  # once per connection (kombu caches it), again after a reconnect
            retry=True,
            retry_policy=RETRY_POLICY,
            **_JSON,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.release()
        self._conn = self._producer = None

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def consume(
        self,
        handler: Handler,
        *,
        queue: str = DEFAULT_QUEUE,
        topics: Iterable[str] = ("#",),
        limit: int | None = None,
        timeout: float | None = None,
        attempts: int = 3,
    ) -> Consumed:
        """Handle events from ``queue`` until ``limit`` were handled or none came for ``timeout`` s.

        ``timeout=None`` waits for ever (a worker). A lost connection is re-established; the event
        in hand then is redelivered by the broker, so handlers must tolerate repeats (``Seen``).
        """
        topics = tuple(topics)
        done = Consumed()
        while True:
            conn = self._connection()
            try:
                conn.ensure_connection(**RETRY_POLICY)
                self._drain(conn, handler, queue, topics, limit, timeout, attempts, done)
                return done
            except conn.recoverable_connection_errors as exc:
                log.warning("bus: connection to %s lost (%s); reconnecting", conn.as_uri(), exc)
                time.sleep(RETRY_POLICY["interval_start"])
            finally:
                conn.release()

    def _drain(
        self,
        conn: Connection,
        handler: Handler,
        queue: str,
        topics: tuple[str, ...],
        limit: int | None,
        timeout: float | None,
        attempts: int,
        done: Consumed,
    ) -> None:
        work, dead = self.queues(queue, topics)
        channel = conn.channel()
        # Re-queued and dead events go through the default exchange straight to one queue, so other
        # queues bound to the topic do not see a retry.
        requeue = Producer(conn.channel())
        self.exchange(channel).declare()
        dead(channel).declare()

        def move(message: Message, to: str, headers: dict[str, Any]) -> None:
            # Publish (confirmed) before the ACK: a crash in between duplicates the event, never loses it.
            headers = {**message.headers, **headers}
            message_id = message.properties.get("message_id")
            requeue.publish(message.body, routing_key=to, headers=headers, message_id=message_id, **_JSON)
            message.ack()

        def on_message(message: Message) -> None:
            try:
                event = events.parse(message.body)
            except (ValidationError, ValueError) as exc:
                log.error("bus: unparseable message on %s, dead-lettered: %s", queue, exc)
                move(message, dead.name, {ERROR_HEADER: f"unparseable: {exc}"[:1000]})
                done.dead += 1
                return
            try:
                handler(event)
            except Exception as exc:
                attempt = _attempts(message) + 1
                error = f"{type(exc).__name__}: {exc}"[:1000]
                if attempt >= attempts:
                    log.error("bus: %s %s failed %d times, dead-lettered: %s", event.type, event.id, attempt, error)
                    move(message, dead.name, {ATTEMPT_HEADER: attempt, ERROR_HEADER: error})
                    done.dead += 1
                else:
                    log.warning("bus: %s %s failed (attempt %d), re-queued: %s", event.type, event.id, attempt, error)
                    move(message, queue, {ATTEMPT_HEADER: attempt, ERROR_HEADER: error})
                    done.retried += 1
                return
            message.ack()
            done.handled += 1

        consumer = Consumer(channel, queues=[work], on_message=on_message, auto_declare=True)
        # One unACKed event per worker: competing workers share the queue instead of one hoarding it.
        consumer.qos(prefetch_count=1)
        with consumer:
            idle_since = time.monotonic()
            while limit is None or done.handled < limit:
                before = (done.handled, done.retried, done.dead)
                wait = None if timeout is None else timeout - (time.monotonic() - idle_since)
                if wait is not None and wait <= 0:
                    return
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:  # socket.timeout: nothing came for `timeout` s
                    return
                if (done.handled, done.retried, done.dead) != before:
                    idle_since = time.monotonic()

"""The event bus on kombu's memory transport and on the real RabbitMQ at TEST_RABBITMQ_URL.

The same tests run on both transports; the RabbitMQ ones use exchange and queue names unique to the
test and delete them afterwards. Two tests are RabbitMQ only: a worker process killed mid-event (its
event must reach the other worker, once) and 10,000 events with none lost or duplicated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Producer, Queue

from cimedic.bus import events
from cimedic.bus.bus import ATTEMPT_HEADER, ERROR_HEADER, MEMORY_URL, Bus, Seen
from cimedic.settings import Settings

RABBIT_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@dataclass
class Env:
    url: str
    bus: Bus
    queue: str

    @property
    def dead(self) -> str:
        return f"{self.queue}.dead"


def _rabbit_reachable() -> None:
    conn = Connection(RABBIT_URL, connect_timeout=3)
    try:
        conn.ensure_connection(max_retries=1)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        return
    finally:
        conn.release()
    pytest.fail(f"RabbitMQ at {RABBIT_URL} is not reachable ({problem}); start it or set TEST_RABBITMQ_URL", False)


def _env(url: str) -> Iterator[Env]:
    # Unique names on both transports: memory's broker state lives as long as the test process.
    prefix = f"test-bus-{uuid.uuid4().hex[:10]}"
    bus = Bus(url, exchange=f"{prefix}.x")
    env = Env(url, bus, f"{prefix}.events")
    try:
        yield env
    finally:
        bus.close()
        with Connection(url) as conn:
            channel = conn.channel()
            for name in (env.queue, env.dead):
                channel.queue_delete(name)
            channel.exchange_delete(f"{prefix}.x")


@pytest.fixture(params=["memory", "rabbitmq"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if request.param == "rabbitmq":
        _rabbit_reachable()
    yield from _env(MEMORY_URL if request.param == "memory" else RABBIT_URL)


@pytest.fixture
def rabbit() -> Iterator[Env]:
    _rabbit_reachable()
    yield from _env(RABBIT_URL)


def _run(n: str = "1") -> events.RunRef:
    return events.RunRef(platform="github", project="acme/app", run_id=n, branch="main")


def _one_of_each() -> list[events.Event]:
    return [
        events.RunCompleted(run=_run(), status="success"),
        events.RunFailed(run=_run("2"), source="webhook:github"),
        events.DiagnosisReady(run=_run("2"), category="dependency", confidence=0.8, summary="pin broke"),
        events.ActionProposed(action_id=7, run=_run("2"), kind="retry", target="job:test", state="proposed"),
        events.ActionExecuted(action_id=7, kind="retry", target="job:test", state="done", verdict="fixed"),
        events.FeedbackGiven(subject="action:7", right=True, by="U123"),
    ]


def _raw_get_all(url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Bodies and headers of every message in ``queue``, taken off it (basic.get, no consumer)."""
    out = []
    with Connection(url) as conn:
        q = Queue(queue, no_declare=True)(conn.channel())
        while (message := q.get(no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            out.append((body, dict(message.headers)))
    return out


def _publish_raw(env: Env, body: bytes, routing_key: str) -> None:
    with Connection(env.url) as conn:
        Producer(conn.channel()).publish(
            body, exchange=env.bus.exchange, routing_key=routing_key, content_type="application/json"
        )


def test_round_trip_of_each_event_type(env: Env) -> None:
    env.bus.declare(env.queue)
    sent = _one_of_each()
    for event in sent:
        env.bus.publish(event)
    got: list[events.Event] = []
    done = env.bus.consume(got.append, queue=env.queue, limit=len(sent), timeout=5)
    assert (done.handled, done.retried, done.dead) == (len(sent), 0, 0)
    assert got == sent  # one queue, one consumer: broker order, every field as sent
    assert env.bus.consume(got.append, queue=env.queue, timeout=0.3).handled == 0


def test_topics_select_event_types(env: Env) -> None:
    env.bus.declare(env.queue, topics=("run.*", "feedback.given"))
    for event in _one_of_each():
        env.bus.publish(event)
    got: list[str] = []
    env.bus.consume(lambda e: got.append(e.type), queue=env.queue, topics=("run.*", "feedback.given"), timeout=0.3)
    assert got == ["run.completed", "run.failed", "feedback.given"]


def test_unparseable_message_goes_straight_to_the_dead_letter_queue(env: Env) -> None:
    env.bus.declare(env.queue)
    _publish_raw(env, b"not json at all", "run.failed")
    _publish_raw(env, json.dumps({"type": "run.exploded", "id": "x"}).encode(), "run.exploded")
    good = events.RunFailed(run=_run())
    env.bus.publish(good)
    called: list[events.Event] = []
    done = env.bus.consume(called.append, queue=env.queue, timeout=0.3)
    assert called == [good]
    assert (done.handled, done.retried, done.dead) == (1, 0, 2)
    dead = _raw_get_all(env.url, env.dead)
    assert [body for body, _ in dead] == [b"not json at all", b'{"type": "run.exploded", "id": "x"}']
    assert all(headers[ERROR_HEADER].startswith("unparseable:") for _, headers in dead)


def test_failing_handler_is_retried_then_dead_lettered(env: Env) -> None:
    env.bus.declare(env.queue)
    bad, flaky, good = (
        events.RunFailed(run=_run("bad")),
        events.RunFailed(run=_run("flaky")),
        events.RunFailed(run=_run()),
    )
    for event in (bad, flaky, good):
        env.bus.publish(event)
    calls: list[str] = []

    def handler(event: events.Event) -> None:
        calls.append(event.id)
        if event.id == bad.id or (event.id == flaky.id and calls.count(flaky.id) == 1):
            raise RuntimeError(f"cannot handle {event.id}")

    done = env.bus.consume(handler, queue=env.queue, attempts=3, timeout=0.3)
    assert calls.count(bad.id) == 3 and calls.count(flaky.id) == 2 and calls.count(good.id) == 1
    assert (done.handled, done.retried, done.dead) == (2, 3, 1)
    [(body, headers)] = _raw_get_all(env.url, env.dead)
    assert events.parse(body) == bad
    assert headers[ATTEMPT_HEADER] == 3
    assert headers[ERROR_HEADER] == f"RuntimeError: cannot handle {bad.id}"
    assert _raw_get_all(env.url, env.queue) == []


def test_seen_drops_repeats_and_forgets_the_oldest() -> None:
    seen = Seen(size=2)
    assert seen.first("a") and seen.first("b")
    assert not seen.first("a")  # a repeat, and now the most recent
    assert seen.first("c")  # forgets b, the oldest
    assert "a" in seen and "b" not in seen and len(seen) == 2
    assert seen.first("b")


def test_from_settings_picks_the_transport_from_the_url() -> None:
    assert Bus.from_settings(Settings()).url == MEMORY_URL
    assert Bus.from_settings(Settings(bus_url=RABBIT_URL)).url == RABBIT_URL


# A worker process: handles events from the queue, appending each handled id to done-<pid>.txt; the
# slow event's handler writes slow.pid and then sleeps (it is killed there) unless slow.pid exists.
WORKER = """
import os, sys, time
from pathlib import Path
from cimedic.bus.bus import Bus

url, exchange, queue, out, slow_id = sys.argv[1:]
out, pid = Path(out), os.getpid()

def handle(event):
    if event.id == slow_id and not (out / "slow.pid").exists():
        (out / "slow.tmp").write_text(str(pid))
        (out / "slow.tmp").rename(out / "slow.pid")
        time.sleep(120)
    with open(out / f"done-{pid}.txt", "a") as fh:
        fh.write(event.id + "\\n")

Bus(url, exchange=exchange).consume(handle, queue=queue, timeout=5)
"""


def _consumer_count(env: Env) -> int:
    with Connection(env.url) as conn:
        _, _, consumers = conn.default_channel.queue_declare(env.queue, passive=True)
        return int(consumers)


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def test_event_of_a_killed_worker_is_handled_once_by_the_other(rabbit: Env, tmp_path: Path) -> None:
    rabbit.bus.declare(rabbit.queue)
    sent = [events.RunFailed(run=_run(str(i))) for i in range(30)]
    slow = sent[0]
    args = [rabbit.url, rabbit.bus.exchange.name, rabbit.queue, str(tmp_path), slow.id]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, *args]) for _ in range(2)]
    try:
        _wait_for(lambda: _consumer_count(rabbit) == 2, 30, "both workers to consume")
        for event in sent:
            rabbit.bus.publish(event)
        _wait_for((tmp_path / "slow.pid").exists, 10, "a worker to start the slow event")
        victim = int((tmp_path / "slow.pid").read_text())
        os.kill(victim, signal.SIGKILL)
        [survivor] = [w for w in workers if w.pid != victim]
        assert survivor.wait(timeout=20) == 0  # exits after 5 s without events
        assert next(w for w in workers if w.pid == victim).wait(timeout=5) == -signal.SIGKILL
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    handled = {p.name: p.read_text().split() for p in tmp_path.glob("done-*.txt")}
    assert sorted(i for ids in handled.values() for i in ids) == sorted(e.id for e in sent)  # each exactly once
    assert slow.id in handled[f"done-{survivor.pid}.txt"]
    assert slow.id not in handled.get(f"done-{victim}.txt", [])
    assert _raw_get_all(rabbit.url, rabbit.queue) == [] and _raw_get_all(rabbit.url, rabbit.dead) == []


def test_ten_thousand_events_none_lost_or_duplicated(rabbit: Env) -> None:
    rabbit.bus.declare(rabbit.queue)
    sent = [events.RunCompleted(run=_run(str(i)), status="success") for i in range(10_000)]
    got: list[str] = []
    # A consumer with its own connection drains the queue while the events are being published.
    consumer = Bus(rabbit.url, exchange=rabbit.bus.exchange.name)
    worker = threading.Thread(
        target=lambda: consumer.consume(lambda e: got.append(e.id), queue=rabbit.queue, limit=len(sent), timeout=10)
    )
    worker.start()
    for event in sent:
        rabbit.bus.publish(event)
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert len(got) == len(set(got)) == len(sent) and set(got) == {e.id for e in sent}
    assert consumer.consume(lambda e: got.append(e.id), queue=rabbit.queue, timeout=0.5).handled == 0

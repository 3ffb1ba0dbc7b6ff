"""Event bus throughput: --n events published, then consumed, through memory:// and RabbitMQ.

cimedic's Bus does per event what delivery guarantees need: JSON from the pydantic model, a
persistent publish the broker confirms (AMQP), prefetch 1 with an ACK after the handler, and
validation of each received event with ``events.parse``. Baselines measured in the same run on the
same transport and events: kombu's ``SimpleQueue`` (kombu's own JSON, persistent, but no publisher
confirms, no prefetch limit, no validation), on RabbitMQ also SimpleQueue with confirms and prefetch 1
(the same guarantees, so the gap to it is cimedic's own cost), and, in memory, a plain ``queue.Queue`` of the event
objects (no serialisation at all, the in-process ceiling). Every run checks the received ids
against the sent ones. RabbitMQ is at --amqp-url; unreachable, its rows are skipped.
Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
import uuid
from collections.abc import Callable

from kombu import Connection

from cimedic.bus import events
from cimedic.bus.bus import MEMORY_URL, Bus

Result = tuple[float, float, list[str]]  # publish s, consume s, ids received


def plain_queue(sent: list[events.Event], _url: str, _prefix: str) -> Result:
    q: queue.Queue[events.Event] = queue.Queue()
    t0 = time.perf_counter()
    for event in sent:
        q.put(event)
    t1 = time.perf_counter()
    got = [q.get(timeout=5).id for _ in sent]
    return t1 - t0, time.perf_counter() - t1, got


def simple_queue(sent: list[events.Event], url: str, prefix: str, guarantees: bool = False) -> Result:
    name = f"{prefix}.simple"
    payloads = [event.model_dump(mode="json") for event in sent]  # kombu serialises these dicts itself
    with Connection(url, transport_options={"confirm_publish": guarantees}) as conn:
        q = conn.SimpleQueue(name, serializer="json")
        if guarantees:
            q.consumer.qos(prefetch_count=1)
        try:
            t0 = time.perf_counter()
            for payload in payloads:
                q.put(payload, delivery_mode=2)
            t1 = time.perf_counter()
            got = []
            for _ in sent:
                message = q.get(timeout=10)
                got.append(message.payload["id"])
                message.ack()
            elapsed = time.perf_counter() - t1
        finally:
            q.close()
            conn.default_channel.queue_delete(name)
            conn.default_channel.exchange_delete(name)
    return t1 - t0, elapsed, got


def simple_queue_guarded(sent: list[events.Event], url: str, prefix: str) -> Result:
    return simple_queue(sent, url, prefix, guarantees=True)


def cimedic_bus(sent: list[events.Event], url: str, prefix: str) -> Result:
    name = f"{prefix}.events"
    got: list[str] = []
    with Bus(url, exchange=f"{prefix}.x") as bus:
        try:
            bus.declare(name)
            t0 = time.perf_counter()
            for event in sent:
                bus.publish(event)
            t1 = time.perf_counter()
            bus.consume(lambda e: got.append(e.id), queue=name, limit=len(sent), timeout=10)
            elapsed = time.perf_counter() - t1
        finally:
            with Connection(url) as conn:
                for q in (name, f"{name}.dead"):
                    conn.default_channel.queue_delete(q)
                conn.default_channel.exchange_delete(f"{prefix}.x")
    return t1 - t0, elapsed, got


KEYS = {
    plain_queue: "queue",
    simple_queue: "simplequeue",
    simple_queue_guarded: "simplequeue_confirmed",
    cimedic_bus: "bus",
}


def reachable(url: str) -> str | None:
    """None, or why the broker at ``url`` cannot be used."""
    conn = Connection(url, connect_timeout=3)
    try:
        conn.ensure_connection(max_retries=1)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.release()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="events per run")
    ap.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672//")
    args = ap.parse_args()
    run = events.RunRef(platform="github", project="acme/app", run_id="1", branch="main")
    sent: list[events.Event] = [events.RunFailed(run=run.model_copy(update={"run_id": str(i)})) for i in range(args.n)]
    expected = sorted(e.id for e in sent)
    methods: list[tuple[str, str, str, Callable[[list[events.Event], str, str], Result]]] = [
        ("memory", "queue.Queue of objects (baseline)", MEMORY_URL, plain_queue),
        ("memory", "kombu SimpleQueue (baseline)", MEMORY_URL, simple_queue),
        ("memory", "cimedic Bus", MEMORY_URL, cimedic_bus),
        ("rabbitmq", "kombu SimpleQueue (baseline)", args.amqp_url, simple_queue),
        ("rabbitmq", "  + confirms, prefetch 1 (baseline)", args.amqp_url, simple_queue_guarded),
        ("rabbitmq", "cimedic Bus", args.amqp_url, cimedic_bus),
    ]
    problem = reachable(args.amqp_url)
    if problem:
        print(f"RabbitMQ at {args.amqp_url} unreachable ({problem}); its rows are skipped", file=sys.stderr)
    print(f"{args.n} events per run")
    print(f"{'transport':<10}{'method':<36}{'events/s':>10}{'publish/s':>11}{'consume/s':>11}{'lost':>6}{'dup':>5}")
    eps: dict[str, float] = {}
    bad = 0
    for transport, label, url, method in methods:
        if transport == "rabbitmq" and problem:
            continue
        pub_s, con_s, got = method(sent, url, f"bench-bus-{uuid.uuid4().hex[:10]}")
        lost, dup = len(set(expected) - set(got)), len(got) - len(set(got))
        bad += lost + dup + (sorted(got) != expected)
        key = f"{transport}_{KEYS[method]}"
        eps[key] = args.n / (pub_s + con_s)
        rates = f"{eps[key]:>10.0f}{args.n / pub_s:>11.0f}{args.n / con_s:>11.0f}"
        print(f"{transport:<10}{label:<36}{rates}{lost:>6}{dup:>5}")
    figures = {"n": str(args.n), **{f"{k}_eps": f"{v:.0f}" for k, v in eps.items()}}
    for transport, base in (
        ("memory", "simplequeue"),
        ("rabbitmq", "simplequeue"),
        ("rabbitmq", "simplequeue_confirmed"),
    ):
        if f"{transport}_bus" in eps:
            figures[f"{transport}_bus_vs_{base}"] = f"{eps[f'{transport}_bus'] / eps[f'{transport}_{base}']:.2f}"
    figures["rabbitmq"] = "skipped" if problem else "ok"
    figures["lost_or_dup"] = str(bad)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

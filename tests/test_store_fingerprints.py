"""Fingerprint store behaviour on real databases: a SQLite file and a PostgreSQL server.

PostgreSQL comes from TEST_POSTGRES_URL (default: the local trust-auth server CI starts). Each test
gets its own schema, dropped afterwards, so tests never see each other's rows and reruns start clean.
An unreachable server fails the PostgreSQL cases loudly instead of skipping them.
"""

from __future__ import annotations

import multiprocessing
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cimedic.store import FingerprintStats, FingerprintStore, StoreError, describe, engine_for

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUNS_PER_WORKER = 25


@pytest.fixture
def store(db_url: str) -> FingerprintStore:
    return FingerprintStore.open(db_url)


def test_first_sighting_creates_the_fingerprint(store: FingerprintStore) -> None:
    stats = store.record("fp1", run_key="run-1", category="test", title="  assert  1 == 2 ")
    assert stats.first_seen_now
    assert (stats.count, stats.count_30d) == (1, 1)
    assert stats.title == "assert 1 == 2"
    assert stats.first_seen == stats.last_seen
    assert stats.first_seen.tzinfo is UTC
    assert describe(stats) == "first seen now"

    again = store.stats("fp1")
    assert again is not None
    assert not again.first_seen_now
    assert again.model_dump(exclude={"first_seen_now"}) == stats.model_dump(exclude={"first_seen_now"})
    assert store.stats("never-seen") is None


def test_same_run_recorded_twice_counts_once(store: FingerprintStore) -> None:
    first = store.record("fp1", run_key="run-1", category="test", title="boom", seen_at=T0)
    second = store.record("fp1", run_key="run-1", category="infra", title="other", seen_at=T0 + timedelta(hours=1))
    assert not second.first_seen_now
    assert second.model_dump(exclude={"first_seen_now"}) == first.model_dump(exclude={"first_seen_now"})
    assert second.count == 1


def test_three_runs_over_forty_days(store: FingerprintStore) -> None:
    for days, run in ((0, "a"), (20, "b"), (40, "c")):
        stats = store.record("fp1", run_key=run, category="test", title=f"run {run}", seen_at=T0 + timedelta(days=days))
    assert (stats.count, stats.count_30d) == (3, 2)

    now = T0 + timedelta(days=40, hours=2)
    later = store.stats("fp1", now=now)
    assert later is not None
    assert (later.count, later.count_30d) == (3, 2)
    assert (later.first_seen, later.last_seen) == (T0, T0 + timedelta(days=40))
    assert describe(later, now) == "first seen 40 days ago, seen 3 times (2 in the last 30 days)"
    recent = store.stats("fp1", now=T0 + timedelta(days=90))
    assert recent is not None and recent.count_30d == 0


def test_backfilled_old_run_moves_first_seen_but_keeps_newest_title(store: FingerprintStore) -> None:
    store.record("fp1", run_key="new", category="test", title="newest wording", seen_at=T0)
    stats = store.record("fp1", run_key="old", category="other", title="old wording", seen_at=T0 - timedelta(days=3))
    assert (stats.first_seen, stats.last_seen, stats.count) == (T0 - timedelta(days=3), T0, 2)
    assert (stats.category, stats.title) == ("test", "newest wording")


def test_other_timezones_are_stored_as_utc_and_naive_is_refused(store: FingerprintStore) -> None:
    paris = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    stats = store.record("fp1", run_key="r", category="test", title="t", seen_at=paris)
    assert stats.first_seen == T0 and stats.first_seen.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record("fp1", run_key="r2", category="test", title="t", seen_at=datetime(2025, 3, 1))


def test_top_ranks_by_sightings(store: FingerprintStore) -> None:
    for fp, days in (("often", [0, 1, 2]), ("once", [30]), ("lately", [28, 29])):
        for day in days:
            store.record(fp, run_key=f"{fp}-{day}", category="test", title=fp, seen_at=T0 + timedelta(days=day))
    now = T0 + timedelta(days=30)
    assert [s.id for s in store.top(now=now)] == ["often", "lately", "once"]
    assert [s.id for s in store.top(limit=1, now=now)] == ["often"]
    # Since day 20 only "lately" (2 sightings) and "once" (1) were seen; "often" stopped.
    since = store.top(since=T0 + timedelta(days=20), now=now)
    assert [(s.id, s.count, s.count_30d) for s in since] == [("lately", 2, 2), ("once", 1, 1)]


def _record_many(url: str, worker: int, barrier: Any, results: Any) -> None:
    """Spawned worker: record RUNS_PER_WORKER distinct runs of one fingerprint, racing the other."""
    try:
        store = FingerprintStore(engine_for(url))
        barrier.wait(timeout=60)
        seen = [
            store.record("shared", run_key=f"w{worker}-{i}", category="test", title="t") for i in range(RUNS_PER_WORKER)
        ]
        results.put(("ok", [(s.count, s.first_seen_now) for s in seen]))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_concurrent_recorders_in_two_processes(db_url: str) -> None:
    FingerprintStore.open(db_url)  # tables first; the race under test is on rows
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_record_many, args=(db_url, n, barrier, results)) for n in range(2)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, "\n".join(errors)
    recorded = [seen for _, per_worker in outcomes for seen in per_worker]
    assert sum(created for _, created in recorded) == 1  # exactly one process created it
    # Recordings are serialised: each saw every earlier one, so the counts they returned are 1..50
    # exactly once each. A recount racing another recorder would return some count twice.
    assert sorted(count for count, _ in recorded) == list(range(1, 2 * RUNS_PER_WORKER + 1))
    stats = FingerprintStore(engine_for(db_url)).stats("shared")
    assert stats is not None and stats.count == 2 * RUNS_PER_WORKER


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'c.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert engine_for(str(engine.url)) is engine


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"\x00garbage, not SQLite\xff" * 512)
    with pytest.raises(StoreError) as caught:
        FingerprintStore.open(f"sqlite:///{path}")
    message = str(caught.value)
    assert str(path) in message and "not a database" in message
    assert "\n" not in message


def test_unreachable_postgres_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        FingerprintStore.open("postgresql+psycopg2://cimedic:hunter2secret@127.0.0.1:1/ci")
    message = str(caught.value)
    assert "hunter2secret" not in message
    assert "cimedic:***@127.0.0.1:1/ci" in message
    assert "\n" not in message


def test_unusable_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot use this URL"):
        engine_for("nosuchdialect://user:pw@host/db")


@pytest.mark.parametrize(
    ("first_seen_ago", "count", "count_30d", "expected"),
    [
        (timedelta(seconds=5), 2, 2, "first seen just now, seen 2 times"),
        (timedelta(minutes=1), 1, 1, "first seen 1 minute ago, seen once"),
        (timedelta(hours=5), 3, 3, "first seen 5 hours ago, seen 3 times"),
        (timedelta(days=3), 14, 14, "first seen 3 days ago, seen 14 times"),
        (timedelta(days=45), 14, 9, "first seen 45 days ago, seen 14 times (9 in the last 30 days)"),
        (-timedelta(seconds=3), 1, 1, "first seen just now, seen once"),  # clock skew
    ],
)
def test_describe(first_seen_ago: timedelta, count: int, count_30d: int, expected: str) -> None:
    stats = FingerprintStats(
        id="fp",
        category="test",
        title="t",
        first_seen=T0 - first_seen_ago,
        last_seen=T0,
        count=count,
        count_30d=count_30d,
    )
    assert describe(stats, T0) == expected
    assert describe(stats.model_copy(update={"first_seen_now": True}), T0) == "first seen now"

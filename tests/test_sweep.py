"""`cimedic sweep` end to end: the real GitHub provider (PyGithub) over real HTTP against the fixture
server, the real investigation flow (offline), the real heal engine and audit log in SQLite; the bus and
the notification channels are in-memory recorders passed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import test_ci_github as github
import typer
from pytest_httpserver import HTTPServer
from test_heal_retry import GitHubRun, writes
from test_history_ingest_providers import GH_RUNS, serve_github
from typer.testing import CliRunner

from cimedic import sweep_cli
from cimedic.models import Category, Diagnosis, Source, SourceKind
from cimedic.notify.base import Delivery, Notice, Severity
from cimedic.settings import Settings, get_settings
from cimedic.sweep import sweep
from cimedic.sweep_digest import Digest
from cimedic.sweep_ledger import MAX_TRIES, Candidate, Ledger
from cimedic.sweep_run import Investigate, default_investigate

SINCE = datetime(2024, 4, 1, tzinfo=UTC)  # the fixtures are from May 2024
URL = f"https://github.com/{github.PROJECT}/actions/runs/{github.RUN_ID}"
RERUN = ("POST", f"{github.RUN_PATH}/rerun-failed-jobs", None)
# A user's knowledge-base entry for the fixture's failure, so the plan proposes a retry.
KB_ENTRY = """
- id: acme-reservation-race
  title: Reservation race in the inventory tests
  category: test
  indications:
    - pattern: "AssertionError: assert 'reserved' == 'refused'"
  description: the reservation test raced the stock update
  remediation: Re-run; the race is being fixed in ACME-123.
  action: retry
  examples:
    - "E       AssertionError: assert 'reserved' == 'refused'"
"""


class Recorder:
    """The bus and the channels, in memory."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.notices: list[Notice] = []
        self.investigated: list[str] = []

    def publish(self, event: Any) -> None:
        self.events.append(event)

    def notify(self, notice: Notice) -> list[Delivery]:
        self.notices.append(notice)
        return [Delivery(channel="memory", ok=True, ref=str(len(self.notices)))]

    def counting(self, inner: Investigate) -> Investigate:
        def investigate(url: str) -> Diagnosis:
            self.investigated.append(url)
            return inner(url)

        return investigate

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


def _settings(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CIMEDIC_GITHUB_API_URL", github.api(server))
    monkeypatch.setenv("CIMEDIC_GITHUB_TOKEN", github.TOKEN)
    get_settings.cache_clear()
    settings = get_settings()
    settings.user_knowledge_dir.mkdir(parents=True, exist_ok=True)
    (settings.user_knowledge_dir / "acme.yaml").write_text(KB_ENTRY)
    return settings


def _sweep(settings: Settings, rec: Recorder, **kwargs: Any) -> Digest:
    kwargs.setdefault("investigate", rec.counting(default_investigate(offline=True)))
    return sweep([github.PROJECT], settings=settings, publish=rec.publish, notify=rec.notify, **kwargs)


def _paths(server: HTTPServer) -> list[str]:
    return [req.path for req, _ in server.log]


def test_a_new_failure_is_investigated_healed_announced_and_digested_once(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_github(httpserver)
    settings = _settings(httpserver, monkeypatch)
    rec = Recorder()

    digest = _sweep(settings, rec, since=SINCE)

    [repo] = digest.repos
    assert (repo.platform, repo.project, repo.listed, repo.already_handled, repo.error) == (
        "github-actions",
        github.PROJECT,
        1,
        0,
        None,
    )
    assert httpserver.log[0][0].args["status"] == "failure"  # only failed runs are listed
    assert httpserver.log[0][0].args["created"] == ">=2024-04-01T00:00:00Z"
    [run] = repo.runs
    assert (run.run_id, run.attempt, run.url, run.branch, run.error) == (
        str(github.RUN_ID),
        1,
        URL,
        "fix/reserve-limits",
        None,
    )
    assert run.category == "test" and "test_reserve_more_than_stock_is_refused" in (run.summary or "")
    assert run.new_fingerprint and run.fingerprint and digest.new_fingerprints == [run.fingerprint]
    # The knowledge-base entry proposed a retry; the shipped policy has a person approve retries of tests.
    [action] = run.actions
    assert (action.kind, action.target, action.state, action.level) == ("retry", "run", "awaiting-approval", "approve")
    assert digest.investigated == 1 and digest.actions_by_state == {"awaiting-approval": 1}
    assert writes(httpserver) == []  # a dry run, and awaiting approval anyway

    assert rec.investigated == [URL]
    assert rec.types == ["run.failed", "diagnosis.ready", "action.proposed"]
    failed, ready, proposed = rec.events
    assert (failed.run.platform, failed.run.project, failed.run.run_id, failed.run.url, failed.source) == (
        "github-actions",
        github.PROJECT,
        str(github.RUN_ID),
        URL,
        "sweep",
    )
    assert (ready.category, ready.fingerprint, ready.route) == ("test", run.fingerprint, "offline")
    assert (proposed.action_id, proposed.kind, proposed.state) == (action.action_id, "retry", "awaiting-approval")

    # Awaiting approval: a person is told, once per failure fingerprint.
    [notice] = rec.notices
    assert run.needs_person and run.notified == [Delivery(channel="memory", ok=True, ref="1")]
    assert notice.severity == Severity.WARNING and notice.url == URL
    assert notice.title == f"CI failure in {github.PROJECT}: test (run {github.RUN_ID})"
    assert notice.dedup_key == f"fingerprint:{run.fingerprint}"
    assert notice.fields["repo"] == github.PROJECT and notice.fields["branch"] == "fix/reserve-limits"
    assert f"`cimedic actions approve {action.action_id} --execute`" in notice.text
    assert notice.attachment and "AssertionError" in notice.attachment

    markdown = digest.to_markdown()
    assert "**1** new failure(s) investigated across 1 repo(s); **1** new fingerprint(s)" in markdown
    assert "actions: awaiting-approval 1." in markdown
    assert f"[{github.RUN_ID}]({URL})" in markdown
    assert f"#{action.action_id} retry run: awaiting-approval (person notified)" in markdown
    assert f"- `{run.fingerprint}` test:" in markdown
    assert "1 failed run(s) listed since 2024-04-01 00:00: 1 new, 0 already handled." in markdown

    # The second sweep lists from the watermark and repeats nothing.
    httpserver.clear_log()
    again = _sweep(settings, rec)

    [repo] = again.repos
    assert (repo.listed, repo.already_handled, repo.runs) == (1, 1, [])
    assert repo.listed_since == datetime(2024, 5, 1, 10, 0, tzinfo=UTC) - timedelta(hours=24)
    assert rec.investigated == [URL] and len(rec.events) == 3 and len(rec.notices) == 1
    assert _paths(httpserver) == [GH_RUNS]  # the listing only: no run, log or report fetched
    assert again.empty and again.investigated == 0 and again.actions_by_state == {}
    assert "**0** new failure(s) investigated" in again.to_markdown()


def test_execute_runs_what_the_policy_allows_once(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    state = GitHubRun(httpserver)  # answers the re-run as GitHub would: attempt 2 starts
    listing = {"total_count": 1, "workflow_runs": [github.fixture("run-failed.json", httpserver)]}
    httpserver.expect_request(GH_RUNS, method="GET").respond_with_json(listing, content_type=github.JSON)
    settings = _settings(httpserver, monkeypatch)
    policy = settings.home / "policy.yaml"
    policy.write_text("enabled: true\ndefaults: {retry: auto, notify: auto}\n")
    rec = Recorder()

    digest = _sweep(settings, rec, since=SINCE, execute=True)

    [run] = digest.runs
    [action] = run.actions
    assert (action.kind, action.state, action.verdict) == ("retry", "executed", "pending")
    assert writes(httpserver) == [RERUN]
    assert rec.types == ["run.failed", "diagnosis.ready", "action.proposed", "action.executed"]
    executed = rec.events[-1]
    assert (executed.action_id, executed.kind, executed.state, executed.verdict) == (
        action.action_id,
        "retry",
        "executed",
        "pending",
    )
    # Being dealt with automatically: nobody is paged.
    assert not run.needs_person and rec.notices == []
    assert not digest.dry_run and "(execute)" in digest.to_markdown()

    # The re-run is attempt 2 of the same run; the listing still shows attempt 1: handled already.
    state.attempt_ends("failure")
    again = _sweep(settings, rec, since=SINCE, execute=True)
    assert again.repos[0].already_handled == 1 and again.runs == []
    assert writes(httpserver) == [RERUN] and len(rec.events) == 4


def _fake_diagnosis(url: str) -> Diagnosis:
    return Diagnosis(
        source=Source(kind=SourceKind.FILE, path=url),
        category=Category.INFRA,
        confidence=0.5,
        summary="runner lost",
        excerpt=None,
    )


def test_a_failed_investigation_is_tried_again_then_given_up(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_github(httpserver)
    settings = _settings(httpserver, monkeypatch)
    rec = Recorder()

    def broken(url: str) -> Diagnosis:
        rec.investigated.append(url)
        raise RuntimeError("the log server is down")

    for attempt in range(1, MAX_TRIES + 1):
        [run] = _sweep(settings, rec, since=SINCE, investigate=broken).runs
        assert run.error == "RuntimeError: the log server is down"
        assert run.gave_up == (attempt == MAX_TRIES)
    assert rec.investigated == [URL] * MAX_TRIES
    assert rec.types == ["run.failed"]  # announced on the first try only
    final = _sweep(settings, rec, since=SINCE, investigate=broken)
    assert final.runs == [] and final.repos[0].already_handled == 1
    assert len(rec.investigated) == MAX_TRIES
    markdown = _sweep(settings, rec, since=SINCE, investigate=broken).to_markdown()
    assert "0 new, 1 already handled" in markdown


def test_a_broken_bus_or_channel_does_not_stop_the_sweep(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_github(httpserver)
    settings = _settings(httpserver, monkeypatch)

    def down(_: Any) -> Any:
        raise ConnectionError("amqp://bus:5672 refused")

    digest = sweep(
        [github.PROJECT, "nosuch:thing"],
        settings=settings,
        since=SINCE,
        publish=down,
        notify=down,
        investigate=_fake_diagnosis,
    )
    first, bad = digest.repos
    [run] = first.runs
    assert run.error is None and run.category == "infra" and run.needs_person  # no remediation proposed
    assert run.notified == [Delivery(channel="notify", ok=False, detail="ConnectionError: amqp://bus:5672 refused")]
    assert digest.publish_errors == 2  # run.failed and diagnosis.ready
    assert (bad.error or "").startswith("nosuch:thing: expected OWNER/REPO") and bad.runs == []
    assert "Not swept: nosuch:thing: expected OWNER/REPO" in digest.to_markdown()


def test_the_ledger_lets_one_process_handle_a_run(db_url: str) -> None:
    from cimedic.store.history import HistoryStore

    cand = Candidate(
        platform="github-actions", base_url="https://api.github.com", project="acme/app", run_id="7", url=URL
    )
    one, two = Ledger(HistoryStore.open(db_url)), Ledger(HistoryStore.open(db_url))  # as two processes would
    assert one.claim(cand, "sweep") == 1
    assert two.claim(cand, "webhook:github") == 0
    assert two.handled(cand)
    # A claim whose process died is taken over once it is stale; finished runs never are.
    later = datetime.now(UTC) + timedelta(hours=2)
    assert two.claim(cand, "sweep", now=later) == 2
    two.finish(cand, 2, "sweep")
    assert one.claim(cand, "sweep", now=later + timedelta(days=1)) == 0
    assert (one.get(cand) or pytest.fail()).state == "done"
    # Another attempt of the same run is another failure.
    assert one.claim(cand.model_copy(update={"attempt": 2}), "sweep") == 1

    # Eight workers racing for one new run: exactly one wins it.
    from concurrent.futures import ThreadPoolExecutor

    racing = cand.model_copy(update={"run_id": "8"})
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda i: (one, two)[i % 2].claim(racing, f"worker-{i}"), range(8)))
    assert sorted(wins) == [0] * 7 + [1]


def test_the_sweep_command_prints_the_digest(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_github(httpserver)
    _settings(httpserver, monkeypatch)
    app = typer.Typer()
    app.command()(sweep_cli.sweep)
    app.command()(sweep_cli.serve)  # a second command, so typer keeps the subcommand names
    runner = CliRunner()

    result = runner.invoke(app, ["sweep", github.PROJECT, "--since", "2024-04-01", "--offline", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] and data["investigated"] == 1 and len(data["new_fingerprints"]) == 1
    assert data["actions_by_state"] == {"awaiting-approval": 1}
    [repo] = data["repos"]
    assert [r["run_id"] for r in repo["runs"]] == [str(github.RUN_ID)]

    again = runner.invoke(app, ["sweep", github.PROJECT, "--offline"])
    assert again.exit_code == 0, again.output
    assert "0 new, 1 already handled" in again.stdout

    nothing = runner.invoke(app, ["sweep"])
    assert "name the repositories to sweep" in str(nothing.exception)


def _history(settings: Settings) -> None:
    """A month of the project's runs: a test that fails now and then on one commit, and a last run
    that took seven times as long as usual."""
    from cimedic.models import Job, Platform, RunInfo, Status, TestResult, TestStatus
    from cimedic.store.history import HistoryStore

    store = HistoryStore.open(settings.effective_database_url)
    start = datetime(2024, 4, 2, tzinfo=UTC)
    for i in range(30):
        when = start + timedelta(days=i)
        flaked = i % 4 == 1
        minutes = 56 if i == 29 else 8 + (i % 3) * 0.5
        info = RunInfo(
            platform=Platform.GITHUB_ACTIONS,
            id=str(7000 + i),
            project=github.PROJECT,
            name="CI",
            status=Status.FAILURE if flaked else Status.SUCCESS,
            commit=f"c{i // 2:05d}",
            branch="main",
            started_at=when,
            finished_at=when + timedelta(minutes=minutes),
            jobs=[
                Job(name="test", status=Status.SUCCESS, started_at=when, finished_at=when + timedelta(minutes=minutes))
            ],
        )
        tests = [
            TestResult(name="test_total", classname="tests.test_cart", status=TestStatus.PASSED, duration_s=0.2),
            TestResult(
                name="test_checkout",
                classname="tests.test_cart",
                status=TestStatus.FAILED if flaked else TestStatus.PASSED,
                duration_s=0.4,
            ),
        ]
        store.upsert_run(info, tests)


def test_the_digest_shows_the_repositorys_flaky_tests_and_anomalies(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_github(httpserver)
    settings = _settings(httpserver, monkeypatch)
    _history(settings)
    rec = Recorder()

    digest = _sweep(settings, rec, since=SINCE, investigate=_fake_diagnosis)

    [repo] = digest.repos
    assert [t.test for t in repo.flaky] == ["tests.test_cart.test_checkout"]
    assert repo.flaky[0].failures > 0 and repo.flaky[0].score >= 0.5
    assert repo.anomalies and repo.anomalies[0].run_id == "7029" and repo.anomalies[0].metric == "duration_s"
    markdown = digest.to_markdown()
    assert "Top flaky tests:\n- `tests.test_cart.test_checkout` p(flaky)" in markdown
    assert "Anomalies:\n- 2024-05-01 00:00 " in markdown and "run 7029: duration_s" in markdown

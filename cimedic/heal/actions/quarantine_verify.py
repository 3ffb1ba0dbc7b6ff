"""Did the quarantine work? The runs of the job after it, read from the CI platform or the run history.

A run counts once the quarantine is in effect in it: after the PR's merge when the change requester
can tell when that was, otherwise from the first run whose report shows the test quarantined
(skipped or xfailed with cimedic's reason by the pytest plugin, or absent from a run that reported
tests, as an exported exclude file leaves it). Runs before that may predate the merge and are not
counted. Then: FIXED when the first ``VERIFY_RUNS`` counted runs all passed; NOT_FIXED when one of
them failed (the job fails with the test quarantined: the failure was not only this test) or the
test failed for real again (the list does not reach it: check its id). Otherwise PENDING.

A pytest run-mode test that passes leaves no trace of the quarantine in a JUnit report, so without
the merge time such runs wait for one that shows it. Without a platform or history: PENDING, saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cimedic.heal.base import ChangeRequester, HealContext, Outcome, Verdict
from cimedic.heal.quarantine_names import RUN_MARK, SKIP_MARK, Result, same_test
from cimedic.models import RunInfo, Status, TestResult
from cimedic.tools.ci.base import CIProvider, RunFilter, RunRef

VERIFY_RUNS = 3
LATER_RUNS = 20  # at most this many later runs are read (one test-report download each on a platform)
_DONE = (Status.SUCCESS, Status.FAILURE)
_PR_EVENTS = ("pull_request", "pull_request_target", "merge_request_event", "PullRequest")


@runtime_checkable
class _Reviews(Protocol):
    """A change requester that can read back its PR/MR (state, merged_at, base), when it offers it."""

    def review(self, number: int) -> Any: ...


@dataclass(frozen=True)
class LaterRun:
    id: str
    passed: bool
    results: list[Result] | None  # None: the run's test results are not known


def review_state(changes: ChangeRequester, outcome: Outcome) -> tuple[str | None, datetime | None, str | None]:
    """(state, merged_at, base branch) of the PR the outcome names, as far as the requester can tell."""
    base = outcome.data.get("base")
    number = outcome.data.get("number")
    if not isinstance(changes, _Reviews) or number is None:
        return None, None, base if isinstance(base, str) else None
    review = changes.review(int(number))
    merged_at = getattr(review, "merged_at", None)
    return (
        getattr(review, "state", None),
        merged_at if isinstance(merged_at, datetime) else None,
        getattr(review, "base", None) or base,
    )


def judge(runs: Iterable[LaterRun], test: str, *, merged: bool, wanted: int = VERIFY_RUNS) -> tuple[Verdict, str]:
    """The verdict from later runs, oldest first (read lazily: it stops at the first that decides)."""
    in_effect, passed = merged, []
    for run in runs:
        mine = [r for r in run.results or [] if same_test(test, r.test)]
        if any(r.status in ("failed", "error") for r in mine):
            if in_effect:
                return (
                    Verdict.NOT_FIXED,
                    f"run {run.id}: {test} failed again: the list does not reach it (check its id)",
                )
            continue  # before the quarantine reached this run's branch
        marked = any((r.message or "").startswith((SKIP_MARK, RUN_MARK)) for r in mine)
        in_effect = in_effect or marked or bool(run.results and not mine)
        if not in_effect:
            continue
        if not run.passed:
            return Verdict.NOT_FIXED, f"run {run.id} failed with {test} quarantined: it was not the only failure"
        passed.append(run.id)
        if len(passed) >= wanted:
            return Verdict.FIXED, f"runs {', '.join(passed)} passed with {test} quarantined"
    waiting = "" if merged or passed else "; none shows the quarantine in effect yet"
    return Verdict.PENDING, f"{len(passed)} of {wanted} runs passed with {test} quarantined so far{waiting}"


def verify_later_runs(
    ctx: HealContext, test: str, *, since: datetime | None, merged: bool, branch: str | None
) -> tuple[Verdict, str]:
    info = ctx.diagnosis.run
    if branch is None and info is not None and not info.pull_request:
        branch = info.branch  # a PR run's branch is the PR's; the list lands on its base
    runs = provider_runs(ctx, since, branch)
    if runs is None:
        runs = history_runs(ctx, since, branch)
    if runs is None:
        return Verdict.PENDING, (
            f"{test} is on the list; no CI platform (investigate the run by URL) or run history to see later runs"
        )
    return judge(runs, test, merged=merged)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # pandas gives NaN for a missing message


def _name(result: TestResult) -> str:
    return f"{result.classname}.{result.name}" if result.classname else result.name


def _same_job(name: str | None, info: RunInfo | None) -> bool:
    return info is None or not info.name or name == info.name


def provider_runs(ctx: HealContext, since: datetime | None, branch: str | None) -> Iterator[LaterRun] | None:
    try:
        provider: CIProvider = ctx.provider
    except ValueError:  # no run URL and no provider: not this source
        return None
    info = ctx.diagnosis.run
    project = ctx.ref.project if ctx.ref else (info.project if info else None)
    if project is None:
        return None
    filters = RunFilter(branch=branch, since=since, limit=LATER_RUNS)
    summaries = [
        s
        for s in provider.runs(project, filters)
        if s.status in _DONE
        and _same_job(s.name, info)
        and s.event not in _PR_EVENTS
        and (info is None or s.id != info.id)
    ]

    def read() -> Iterator[LaterRun]:
        for s in reversed(summaries):  # listings are newest first
            if ctx.ref is not None:
                ref = ctx.ref.model_copy(update={"run_id": s.id, "job_id": None, "url": s.url or ""})
            else:
                ref = RunRef(platform=s.platform, base_url="", project=project, run_id=s.id)
            results = [Result(_name(t), str(t.status), t.message) for t in provider.test_results(ref)]
            yield LaterRun(s.id, s.status == Status.SUCCESS, results or None)

    return read()


def history_runs(ctx: HealContext, since: datetime | None, branch: str | None) -> Iterator[LaterRun] | None:
    info = ctx.diagnosis.run
    url = ctx.settings.effective_database_url
    if info is None or (url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()):
        return None  # never create a history just to find it empty
    from cimedic.store.history import HistoryStore

    store = HistoryStore.open(url)
    runs = store.runs_frame(info.project, since=since)
    keep = runs["status"].isin([str(s) for s in _DONE]) & runs["pull_request"].isna() & (runs["run_id"] != info.id)
    if info.name:
        keep &= runs["job"] == info.name
    if branch:
        keep &= runs["branch"] == branch
    tests = store.tests_frame(info.project, since=since)
    by_run = {key: group for key, group in tests.groupby(["run_id", "attempt"])}

    def read() -> Iterator[LaterRun]:
        for row in runs[keep].itertuples(index=False):
            group = by_run.get((row.run_id, row.attempt))
            results = None
            if group is not None:
                results = [Result(str(t.test), str(t.status), _text(t.message)) for t in group.itertuples(index=False)]
            yield LaterRun(str(row.run_id), row.status == Status.SUCCESS, results)

    return read()

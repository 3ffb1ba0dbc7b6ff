"""What an investigation of a CI run adds to history, and what history adds to it.

The run (with its test results) and its diagnosis go into the history store, so flaky-test,
anomaly and report commands see runs people investigated. For a failed PR/MR run, history then
answers "is this my change?" (``tools.delivery.change_cause``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cimedic.errors import CimedicError, one_line
from cimedic.models import ChangeVerdict, Diagnosis, RunInfo, TestResult
from cimedic.settings import Settings
from cimedic.tools.delivery.change_cause import FailedRun, is_my_change

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BASE = "main"


def _test_id(test: TestResult) -> str:
    return f"{test.classname}.{test.name}" if test.classname else test.name


def _base_branch(runs: pd.DataFrame) -> str:
    """The branch non-PR runs use most: the base that PRs merge into."""
    pushes = runs[runs["pull_request"].isna() & runs["branch"].notna()]
    return str(pushes["branch"].mode().iloc[0]) if not pushes.empty else DEFAULT_BASE


def _flake_rates(tests: pd.DataFrame, names: set[str]) -> dict[str, float]:
    from cimedic.tools.flaky import rank_flaky

    mine = tests[tests["test"].isin(names)]
    if mine.empty:
        return {}
    return {t.test: (1.0 if t.definitive else t.flake_rate) for t in rank_flaky(mine, min_score=0.0)}


def remember(
    settings: Settings, info: RunInfo, tests: list[TestResult], diag: Diagnosis, warnings: list[str]
) -> ChangeVerdict | None:
    """Store the run and its diagnosis; for a PR/MR run, weigh change against other causes.
    A store problem becomes a warning: history is a help to an investigation, not a condition."""
    from cimedic.store.history import HistoryStore

    try:
        store = HistoryStore.open(settings.effective_database_url)
        store.upsert_run(info, tests, source="investigate")
        store.record_diagnosis(
            str(info.platform),
            info.project,
            info.id,
            diag,
            attempt=info.attempt,
            model_version=diag.model_versions.get("classifier"),
        )
        if not info.pull_request:
            return None
        runs = store.runs_frame(info.project)
        failed_names = {_test_id(t) for t in tests if t.status in ("failed", "error")}
        flake = _flake_rates(store.tests_frame(info.project), failed_names) if failed_names else {}
    except CimedicError as exc:
        warnings.append(f"run history not used: {one_line(exc)}")
        return None
    failed = FailedRun(
        project=info.project,
        run_id=info.id,
        job=info.name,
        commit=info.commit,
        pull_request=info.pull_request,
        base_branch=_base_branch(runs),
        category=str(diag.category),
        fingerprint=diag.fingerprint.id if diag.fingerprint else None,
        evidence_text=[e.text for e in diag.evidence] + ([diag.excerpt.text] if diag.excerpt else []),
        failed_tests=sorted(failed_names),
    )
    return is_my_change(failed, runs, flake_rates=flake)

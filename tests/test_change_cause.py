""" "Is this my change?": evidence from history moves the odds between change, flaky, infra and base."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from cimedic.tools.delivery.change_cause import Cause, FailedRun, is_my_change, paths_in, touches

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def runs(*rows: tuple[str, str, str | None, str, str, str | None]) -> pd.DataFrame:
    cols = ["run_id", "branch", "pull_request", "commit", "status", "fingerprint"]
    frame = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])
    return frame.assign(project="acme/shop", job="ci", started_at=[T0 + timedelta(hours=i) for i in range(len(frame))])


def failed(**extra: object) -> FailedRun:
    base = {
        "project": "acme/shop",
        "run_id": "99",
        "job": "ci",
        "commit": "abc123",
        "pull_request": "42",
        "base_branch": "main",
        "category": "test",
        "fingerprint": "fp1",
        "evidence_text": [
            "E   AssertionError at src/shop/cart.py:88 in test_total",
            "tests/test_cart.py:12: in test_total",
        ],
        "failed_tests": ["tests.test_cart.test_total"],
    }
    base.update(extra)
    return FailedRun.model_validate(base)


def test_a_new_failure_in_the_files_the_change_touches_is_the_change() -> None:
    history = runs(("1", "main", None, "m1", "success", None), ("2", "feature", "41", "x", "failure", "fp9"))
    verdict = is_my_change(failed(), history, changed_files=["src/shop/cart.py", "README.md"])
    assert verdict.likely is Cause.CHANGE
    assert verdict.p_change > 0.9
    assert any("src/shop/cart.py" in why for why in verdict.evidence)
    assert any("never seen outside this change" in why for why in verdict.evidence)


def test_the_same_failure_on_the_base_branch_is_a_broken_base() -> None:
    history = runs(("1", "main", None, "m1", "failure", "fp1"), ("2", "main", None, "m2", "failure", "fp1"))
    verdict = is_my_change(failed(), history, changed_files=["docs/index.md"])
    assert verdict.likely is Cause.BROKEN_BASE
    assert verdict.p_change < 0.2
    assert any("main failed the same way in 2 run(s)" in why for why in verdict.evidence)


def test_a_flaky_test_that_passed_on_rerun_is_flakiness() -> None:
    history = runs(("98", "feature", "42", "abc123", "success", None), ("5", "feature", "17", "y", "failure", "fp1"))
    verdict = is_my_change(failed(), history, flake_rates={"tests.test_cart.test_total": 0.12})
    assert verdict.likely is Cause.FLAKY
    assert verdict.probabilities[Cause.FLAKY] > 0.8


def test_infrastructure_failures_point_away_from_the_change() -> None:
    verdict = is_my_change(failed(category="infra", fingerprint=None, evidence_text=["dial tcp: i/o timeout"]), None)
    assert verdict.likely is Cause.INFRA
    assert abs(sum(verdict.probabilities.values()) - 1.0) < 1e-3


def test_paths_are_found_in_error_lines_and_matched_by_suffix_or_name() -> None:
    mentioned = paths_in(
        ['  File "/home/runner/work/shop/shop/src/shop/cart.py", line 88', "at Cart.total(Cart.java:41)"]
    )
    assert "Cart.java" in mentioned
    assert touches(["src/shop/cart.py", "src/main/java/acme/Cart.java", "setup.cfg"], mentioned) == [
        "src/shop/cart.py",
        "src/main/java/acme/Cart.java",
    ]

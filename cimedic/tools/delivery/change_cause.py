""" "Is this my change?": for a failed PR/MR run, how likely the change under test caused the failure,
against flakiness, infrastructure or an already-broken base branch.

Evidence is gathered from run history (the same fingerprint on the base branch, on other changes,
or new with this one; a rerun of the same commit that passed), the flake history of the failed
tests, the failure's category, and whether files the change touches appear in the error lines.
Each piece multiplies the odds by the likelihoods in ``config/change_cause.yaml`` (naive Bayes:
pieces are treated as independent, which overstates agreeing evidence a little); the result is a
distribution over the four causes with the evidence that moved it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, Field

from cimedic.models import Cause, ChangeVerdict

if TYPE_CHECKING:
    import pandas as pd

INFRA_CATEGORIES = {"infra", "timeout", "resource"}
# A flake-rate estimate above this counts as "the failed tests are flaky".
FLAKY_RATE = 0.05
_PATHISH = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.[A-Za-z]{1,6}\b")


class CausePolicy(BaseModel):
    prior: dict[Cause, float]
    evidence: dict[str, dict[Cause, float]]


class FailedRun(BaseModel):
    """The failed run as this analysis needs it (from a Diagnosis plus the run's metadata)."""

    project: str
    run_id: str
    job: str | None = None
    commit: str | None
    pull_request: str | None
    base_branch: str | None
    category: str
    fingerprint: str | None
    evidence_text: list[str] = Field(default_factory=list)
    failed_tests: list[str] = Field(default_factory=list)


@lru_cache(maxsize=2)
def load_policy() -> CausePolicy:
    text = resources.files("cimedic.config").joinpath("change_cause.yaml").read_text(encoding="utf-8")
    return CausePolicy.model_validate(yaml.safe_load(text))


def paths_in(lines: Iterable[str]) -> set[str]:
    """File paths mentioned in error lines and stack traces (``src/app/cart.py:12``, ``Cart.java``)."""
    found: set[str] = set()
    for line in lines:
        found.update(m.group(0) for m in _PATHISH.finditer(line))
    return found


def touches(changed: Sequence[str], mentioned: set[str]) -> list[str]:
    """Changed files named in the evidence: by path suffix, or by file name when it is distinctive."""
    hits: list[str] = []
    names = {PurePosixPath(m).name for m in mentioned}
    for path in changed:
        p = PurePosixPath(path)
        if any(m.endswith(str(p)) or str(p).endswith(m) for m in mentioned if "/" in m) or p.name in names:
            hits.append(path)
    return hits


def gather(
    failed: FailedRun,
    runs: pd.DataFrame | None,
    *,
    changed_files: Sequence[str] = (),
    flake_rates: dict[str, float] | None = None,
) -> list[tuple[str, str]]:
    """(evidence key, plain-words reason) pairs for this failure."""
    found: list[tuple[str, str]] = []
    if runs is not None and not runs.empty and failed.fingerprint:
        others = runs[(runs["project"] == failed.project) & (runs["run_id"] != failed.run_id)]
        same = others[others["fingerprint"] == failed.fingerprint]
        on_base = same[same["pull_request"].isna() & (same["branch"] == failed.base_branch)]
        if failed.base_branch and not on_base.empty:
            found.append(
                ("same_fingerprint_on_base", f"{failed.base_branch} failed the same way in {len(on_base)} run(s)")
            )
        other_changes = same[same["pull_request"].notna() & (same["pull_request"] != failed.pull_request)]
        if not other_changes.empty:
            n = other_changes["pull_request"].nunique()
            found.append(("fingerprint_seen_on_other_changes", f"{n} other change(s) failed the same way"))
        outside = same[same["pull_request"].isna() | (same["pull_request"] != failed.pull_request)]
        if outside.empty:
            found.append(("fingerprint_new_with_change", "this failure was never seen outside this change"))
        if failed.commit:
            mine = others[others["commit"] == failed.commit]
            if failed.job:
                mine = mine[mine["job"] == failed.job]
            if (mine["status"] == "success").any():
                found.append(("passed_on_rerun", f"commit {failed.commit[:10]} also passed in another run"))
    hits = touches(changed_files, paths_in(failed.evidence_text))
    if hits:
        found.append(("changed_files_in_evidence", f"the change touches {', '.join(hits[:3])}, named in the error"))
    flaky = [t for t in failed.failed_tests if (flake_rates or {}).get(t, 0.0) >= FLAKY_RATE]
    if flaky:
        found.append(("failed_tests_are_flaky", f"{len(flaky)} failed test(s) have a flake history: {flaky[0]}"))
    if failed.category in INFRA_CATEGORIES:
        found.append(("infra_category", f"the failure is {failed.category}, not in the code"))
    return found


def verdict(evidence: list[tuple[str, str]], policy: CausePolicy | None = None) -> ChangeVerdict:
    policy = policy or load_policy()
    weights = dict(policy.prior)
    for key, _ in evidence:
        for cause, likelihood in policy.evidence[key].items():
            weights[cause] *= likelihood
    total = sum(weights.values())
    probs = {c: round(w / total, 4) for c, w in weights.items()}
    likely = max(probs, key=lambda c: probs[c])
    return ChangeVerdict(
        probabilities=probs, likely=likely, p_change=probs[Cause.CHANGE], evidence=[why for _, why in evidence]
    )


def is_my_change(
    failed: FailedRun,
    runs: pd.DataFrame | None,
    *,
    changed_files: Sequence[str] = (),
    flake_rates: dict[str, float] | None = None,
) -> ChangeVerdict:
    return verdict(gather(failed, runs, changed_files=changed_files, flake_rates=flake_rates))

"""Quarantine: put a failing (flaky) test on the repository's quarantine list, as a PR people review.

plan() reads ``.cimedic/quarantine.yaml`` from the default branch, adds the test (reason from the
action, evidence from the diagnosis) and shows the diff; execute() hands the new file to the change
requester, which pushes ``cimedic/quarantine-<slug>`` and opens the PR (or finds the one already
open). The list takes effect where the test runner reads it: the pytest plugin, or an exported
exclude file for other runners (docs/quarantine.md).

verify() is FIXED only when later runs of the job pass with the test quarantined, as seen through
the run's CI platform or, without one, the run history (``quarantine_verify``). Until the PR is
merged and enough such runs exist it is PENDING; it never guesses from the PR alone.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from difflib import unified_diff
from typing import ClassVar

from cimedic.heal.actions.quarantine_verify import review_state, verify_later_runs
from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.heal.quarantine import PATH, Entry, Evidence, Mode, QuarantineError, add, dump, parse
from cimedic.heal.quarantine_names import same_test
from cimedic.models import Action, ActionKind, Cause, Diagnosis

# Release after N passes in a row, N such that a test still flaking at its measured rate would have
# failed at least once with 95% probability: (1 - rate)^N <= 0.05. Without a rate, 20 passes.
MISSED_FLAKE = 0.05
PASSES_DEFAULT, PASSES_MIN, PASSES_MAX = 20, 5, 100
_JUNIT_WHY = "failed test in JUnit report"  # cimedic.investigate's evidence for a failed JUnit case


def passes_to_release(flake_rate: float | None) -> int:
    if flake_rate is None or not 0.0 < flake_rate < 1.0:
        return PASSES_DEFAULT
    needed = math.ceil(math.log(MISSED_FLAKE) / math.log(1.0 - flake_rate))
    return min(max(needed, PASSES_MIN), PASSES_MAX)


def slug(test: str) -> str:
    # The end of an id tells tests apart (same module, other function); the hash keeps two long ids apart.
    words = re.sub(r"[^a-z0-9]+", "-", test.casefold()).strip("-")[-40:].strip("-") or "test"
    return f"{words}-{hashlib.sha256(test.encode()).hexdigest()[:8]}"


def target_test(target: str, diag: Diagnosis) -> str:
    """The failed test ``target`` names, as fully as the diagnosis knows it."""
    names = [t.name for t in diag.failed_tests]
    wanted = " ".join(target.split())
    if wanted not in names:
        found = [n for n in names if same_test(n, wanted) or same_test(wanted, n)]
        if len(found) != 1:
            raise ValueError(f"{target!r} is not one failed test of this run: nothing to quarantine")
        wanted = found[0]
    # A JUnit case reaches the diagnosis by its bare name; its evidence line ("cls.name: msg") has the class.
    for ev in diag.evidence:
        head = ev.text.split(": ", 1)[0]
        if ev.why == _JUNIT_WHY and head != wanted and head.endswith("." + wanted):
            return head
    return wanted


def _float(params: dict[str, str], key: str) -> float | None:
    try:
        value = float(params[key])
    except (KeyError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def evidence(action: Action, ctx: HealContext, test: str) -> Evidence:
    diag = ctx.diagnosis
    run = (diag.run.url if diag.run else None) or (ctx.ref.url if ctx.ref else None) or None
    flaky = diag.change_cause.probabilities.get(Cause.FLAKY) if diag.change_cause else None
    failed = next((t for t in diag.failed_tests if same_test(t.name, test) or same_test(test, t.name)), None)
    message = " ".join((failed.message if failed else "").split())[:200] or None
    return Evidence.model_validate(
        {
            "run": run,
            "fingerprint": diag.fingerprint.id if diag.fingerprint else None,
            "flake_rate": _float(action.params, "flake_rate"),
            "p_flaky": round(flaky, 3) if flaky is not None else _float(action.params, "p_flaky"),
            "message": message,
        }
    )


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def _body(entry: Entry, diff: str) -> str:
    facts = entry.evidence.model_dump(exclude_none=True)
    lines = [
        f"cimedic proposes to quarantine `{entry.test}`: {entry.reason}",
        "",
        f"- mode `{entry.mode}`: "
        + ("the test is not run." if entry.mode == "skip" else "the test runs, but its failure never fails the build."),
        f"- released (removed from the list) after {entry.passes_to_release} passes in a row.",
        *(f"- {key}: {value}" for key, value in facts.items()),
        "",
        "Merge to quarantine it, close to decline. How runners read the list: docs/quarantine.md.",
        "",
        "```diff",
        diff.rstrip("\n"),
        "```",
    ]
    return "\n".join(lines)


def _apply(text: str | None, entry: Entry) -> str:
    qlist = parse(text or "", PATH)
    add(
        qlist,
        entry.test,
        entry.reason,
        added=entry.added,
        mode=entry.mode,
        evidence=entry.evidence,
        passes_to_release=entry.passes_to_release,
    )
    return dump(qlist)


class Quarantine:
    kind: ClassVar[ActionKind] = ActionKind.QUARANTINE

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    def plan(self, action: Action, ctx: HealContext) -> Step:
        test = target_test(action.target, ctx.diagnosis)
        mode = action.params.get("mode", "skip")
        if mode not in ("skip", "run"):
            raise ValueError(f"quarantine mode {mode!r}: skip or run")
        facts = evidence(action, ctx, test)
        passes = action.params.get("passes_to_release")
        entry = Entry(
            test=test,
            reason=" ".join(action.reason.split())[:300] or "quarantined by cimedic",
            added=self._now().date(),
            mode=_mode(mode),
            evidence=facts,
            passes_to_release=int(passes) if passes and passes.isdigit() else passes_to_release(facts.flake_rate),
        )
        current = ctx.changes.read(PATH)
        try:
            new = _apply(current, entry)
        except QuarantineError as exc:
            raise ValueError(str(exc)) from None
        if new == current:
            raise ValueError(f"{test} is already on {PATH} with this reason: if it still fails, check its id")
        diff = "".join(unified_diff((current or "").splitlines(True), new.splitlines(True), f"a/{PATH}", f"b/{PATH}"))
        branch = f"cimedic/quarantine-{slug(test)}"
        title = f"Quarantine {test}" if len(test) <= 80 else f"Quarantine …{test[-79:]}"
        return Step(
            kind=self.kind,
            target=action.target,
            key=f"quarantine:{run_key(ctx)}:{test}"[:500],
            summary=f"Open a PR from {branch} adding {test} to {PATH} (mode {entry.mode})",
            request={
                "path": PATH,
                "test": test,
                "entry": entry.model_dump(mode="json", exclude_none=True),
                "base_sha256": _sha(current),
                "files": {PATH: new},
                "diff": diff,
                "branch": branch,
                "title": title,
                "body": _body(entry, diff),
            },
        )

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        req = step.request
        files = dict(req["files"])
        note = ""
        current = ctx.changes.read(PATH)
        if _sha(current) != req["base_sha256"]:
            # The list moved since the plan (another quarantine merged): the same entry on today's list,
            # never the planned file, which would drop what was merged meanwhile.
            files = {PATH: _apply(current, Entry.model_validate(req["entry"]))}
            note = " (the list changed since the plan: the entry was added to it as it is now)"
            if files[PATH] == current:
                data = {"already": True, "proposed_at": self._now().isoformat()}
                return Outcome(done=True, detail=f"{req['test']} is already on the list", data=data)
        done = ctx.changes.propose(
            files, branch=req["branch"], title=req["title"], body=req["body"], dry_run=ctx.dry_run
        )
        data = {**done.data, "proposed_at": self._now().isoformat()}
        return Outcome(done=done.done, detail=done.detail + note, data=data)

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        test = str(step.request["test"])
        try:
            listed = parse(ctx.changes.read(PATH) or "", PATH).find(test)
        except QuarantineError as exc:
            return Verdict.PENDING, f"the default branch's list cannot be read: {exc}"
        state, merged_at, base = review_state(ctx.changes, outcome)
        if listed is None:
            if state not in (None, "open", "merged"):
                return Verdict.NOT_FIXED, f"the quarantine PR was {state} without merging"
            if state == "merged":
                return Verdict.UNKNOWN, f"the PR was merged but {test} is no longer on the list: released or reverted"
            if not outcome.done and not outcome.data.get("already"):
                return Verdict.UNKNOWN, "no PR was opened: nothing to follow"
            return Verdict.PENDING, f"{test} is not on the default branch's list yet: the PR is not merged"
        proposed = outcome.data.get("proposed_at")
        since = merged_at or (datetime.fromisoformat(proposed) if isinstance(proposed, str) else None)
        return verify_later_runs(ctx, test, since=since, merged=merged_at is not None, branch=base)


def _mode(text: str) -> Mode:
    return "run" if text == "run" else "skip"

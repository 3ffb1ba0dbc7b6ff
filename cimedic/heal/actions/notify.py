"""Notify: comment on the run's pull/merge request (or its commit) with what cimedic found and proposes.

The provider decides where the comment goes: GitHub comments on the run's pull request, else on its
head commit; GitLab notes the merge request of an MR pipeline, else comments on the pipeline's commit;
Azure DevOps starts a thread on the build's pull request. Jenkins has nowhere to comment.

The body starts with a hidden marker carrying the step key (``<!-- cimedic:KEY -->``) so a comment
already posted for this key can be recognised. The ``CIProvider`` protocol has no method that lists
existing comments; a provider that offers one (``CommentListing``) is asked before posting, otherwise a
second execution is stopped only by the audit log's key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Protocol, runtime_checkable

from cimedic.heal.base import HealContext, Outcome, Step, Verdict, run_key
from cimedic.models import Action, ActionKind, Diagnosis, Platform
from cimedic.redact import redact
from cimedic.tools.ci.base import RunRef

_NOWHERE = {Platform.JENKINS, Platform.GENERIC}
MAX_ACTIONS = 5
MAX_TEXT = 300  # one evidence line or reason; the comment stays a glance, the report has the rest


@runtime_checkable
class CommentListing(Protocol):
    def comments(self, ref: RunRef) -> Iterable[str]:
        """The bodies of the comments already on the run's pull/merge request (or its commit)."""
        ...


def marker(key: str) -> str:
    # The key holds the action's target, which comes from the run's own names: redacted like the rest.
    # "--" would end the HTML comment early and show the rest of the key in the comment.
    safe = redact(key).replace("--", "-\u2010")
    return f"<!-- cimedic:{safe} -->"


def _clip(text: str, *, squash: bool = True) -> str:
    # Prose is squashed onto one line; a log line keeps its spacing (pytest's "E       " is meaningful).
    text = " ".join(text.split()) if squash else text.strip("\r\n")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _quiet(text: str) -> str:
    # Log text and model prose are not ours to @-mention people or teams with.
    return text.replace("@", "@\u2060")


def _code(text: str) -> str:
    """``text`` as a fenced block whose fence no run of backticks inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def body(key: str, diag: Diagnosis) -> str:
    lines = [f"### cimedic: {diag.category} failure", "", _quiet(_clip(diag.summary))]
    lines[-1] += f" (confidence {diag.confidence:.0%})"
    if diag.evidence:
        top = diag.evidence[0]
        lines += ["", f"**Evidence** `{top.path}:{top.line}`", _code(_clip(top.text, squash=False))]
    proposed = [a for a in (diag.plan.actions if diag.plan else []) if a.kind != ActionKind.NOTIFY]
    if proposed:
        lines += ["", "**Proposed actions** (a person or the policy decides what runs)"]
        lines += [f"- {a.kind} `{_clip(a.target)}`: {_quiet(_clip(a.reason))}" for a in proposed[:MAX_ACTIONS]]
    # The marker is redacted on its own, so execute rebuilds exactly the same one from the step key.
    return marker(key) + "\n" + redact("\n".join(lines))


class Notify:
    kind: ClassVar[ActionKind] = ActionKind.NOTIFY

    def _ref(self, ctx: HealContext) -> RunRef:
        if ctx.ref is None:
            raise ValueError("notify comments on the run's pull request: investigate the run by URL")
        if ctx.provider.platform in _NOWHERE:
            raise ValueError(f"{ctx.provider.platform} has no pull request or commit comments to post to")
        return ctx.ref

    def plan(self, action: Action, ctx: HealContext) -> Step:
        ref = self._ref(ctx)
        key = f"notify:{run_key(ctx)}:{action.target}"[:500]
        text = body(key, ctx.diagnosis)
        write = ctx.provider.comment(ref, text, dry_run=True)
        what = write.detail.removeprefix("would ")
        request = write.model_dump(include={"method", "endpoint", "payload", "target"})
        return Step(
            kind=self.kind,
            target=action.target,
            key=key,
            summary=what[:1].upper() + what[1:],
            # The body as approved: execute posts exactly this.
            request=request | {"body": text},
        )

    def execute(self, step: Step, ctx: HealContext) -> Outcome:
        ref = self._ref(ctx)
        provider = ctx.provider
        if isinstance(provider, CommentListing):
            tag = marker(step.key)
            if any(existing.lstrip().startswith(tag) for existing in provider.comments(ref)):
                return Outcome(done=True, detail="already commented for this step", data={"already": True})
        result = provider.comment(ref, step.request["body"], dry_run=False)
        return Outcome(done=result.done, detail=result.detail, data={"endpoint": result.endpoint})

    def verify(self, step: Step, outcome: Outcome, ctx: HealContext) -> tuple[Verdict, str]:
        return Verdict.UNKNOWN, "a comment informs people; whether it helped cannot be verified"

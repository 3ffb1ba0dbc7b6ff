"""The sequence view: the chain of steps and log templates that led to the failure.

Read top to bottom it answers "what happened first": the steps that ran up to the failing one,
then the distinct templates of the failing step's evidence in log order. Given a passing run of
the same job (``--baseline``), each template is marked new or known, and the first new one is the
divergence: where this run departed from the last good one, often the real first cause when the
loudest error comes later.
"""

from __future__ import annotations

from cimedic.models import Run, Sequence, SequenceItem, Status
from cimedic.redact import redact
from cimedic.tools.logs.localize import LogAnalysis
from cimedic.tools.logs.templates import TemplateIndex, mask

MAX_STEPS = 30
MAX_TEMPLATES = 8
NAME_MAX = 160


def _steps(run: Run, failed_job: str | None, failed_step: str | None) -> list[SequenceItem]:
    items: list[SequenceItem] = []
    # Only the failing job's steps: other jobs ran in parallel and did not lead to this failure.
    for job in (j for j in run.jobs if failed_job is None or j.name == failed_job):
        for step in job.steps:
            failing = job.name == failed_job and step.name == failed_step
            status = Status.FAILURE if failing else step.status
            items.append(SequenceItem(kind="step", name=redact(f"{job.name} / {step.name}"), status=status))
            if failing:
                return items[-MAX_STEPS:]
    return items[-MAX_STEPS:]


def build_sequence(
    run: Run,
    analysis: LogAnalysis | None,
    *,
    job: str | None = None,
    step: str | None = None,
    baseline: TemplateIndex | None = None,
) -> Sequence | None:
    items = _steps(run, job, step)
    templates: dict[str, SequenceItem] = {}
    if analysis is not None:
        for scored in sorted(analysis.evidence, key=lambda s: s.line.no):
            text = scored.line.text.strip()
            key = mask(text)
            if key in templates:
                templates[key].count += 1
                continue
            if len(templates) >= MAX_TEMPLATES:
                continue
            templates[key] = SequenceItem(
                kind="template",
                name=redact(key)[:NAME_MAX],
                line=scored.line.no,
                new=None if baseline is None else not baseline.knows(text),
            )
    items += templates.values()
    if not items:
        return None
    divergence = next((item for item in items if item.new), None)
    return Sequence(items=items, divergence=divergence)

"""Recorded eval cases: one folder per case, ``case.yaml`` beside the material it points at.

Layout (``cimedic/evals/cases/NNN_slug/case.yaml``)::

    id: "001_gha_pytest_assert"      # = folder name
    platform: github-actions         # github-actions | gitlab | jenkins | azure-devops | generic
    provenance: "how the log was produced, and its licence"
    tags: [easy, test]               # one difficulty (easy|hard) + free tags
    input: recorded/run-logs.zip     # file or folder, relative to the case folder
    expected:
      category: test
      lines: {"2_test.txt": [[57, 60]]}   # culprit ranges per file, as the diagnosis names files
      cause_keywords: [AssertionError]     # any one (case-insensitive) counts
      actions_ok: [retry, none]            # empty: anything not forbidden
      actions_forbidden: [rollback]
    same_failure_as: null            # id of a case recording the same failure (fingerprints must match)

A bad case raises :class:`~cimedic.errors.InputError` naming the case folder and the problem in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cimedic.errors import InputError
from cimedic.models import ActionKind, Category

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASE_FILE = "case.yaml"
DIFFICULTIES = ("easy", "hard")

Range = tuple[int, int]


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    lines: dict[str, list[Range]] = Field(default_factory=dict)
    cause_keywords: list[str] = Field(default_factory=list)
    actions_ok: list[ActionKind] = Field(default_factory=list)
    actions_forbidden: list[ActionKind] = Field(default_factory=list)

    @field_validator("lines")
    @classmethod
    def _ranges(cls, value: dict[str, list[Range]]) -> dict[str, list[Range]]:
        for path, ranges in value.items():
            for lo, hi in ranges:
                if lo < 1 or hi < lo:
                    raise ValueError(f"bad range [{lo}, {hi}] for {path!r}: need 1 <= start <= end")
        return value

    @model_validator(mode="after")
    def _disjoint_actions(self) -> Expected:
        both = set(self.actions_ok) & set(self.actions_forbidden)
        if both:
            raise ValueError(f"actions both ok and forbidden: {', '.join(sorted(both))}")
        return self


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    platform: Literal["github-actions", "gitlab", "jenkins", "azure-devops", "generic"]
    provenance: str = Field(min_length=1)
    tags: list[str]
    input: str
    expected: Expected
    same_failure_as: str | None = None
    notes: str | None = Field(default=None, description="free text for people (why the case is hard...)")
    folder: Path = Field(default=Path(), exclude=True, description="the case folder (set by the loader)")

    @field_validator("tags")
    @classmethod
    def _difficulty(cls, value: list[str]) -> list[str]:
        levels = [t for t in value if t in DIFFICULTIES]
        if len(levels) != 1:
            raise ValueError(f"needs exactly one difficulty tag (easy or hard), got {levels or 'none'}")
        return value

    @property
    def input_path(self) -> Path:
        return self.folder / self.input

    @property
    def difficulty(self) -> str:
        return next(t for t in self.tags if t in DIFFICULTIES)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "case"
        got = f" (got {err['input']!r})" if err["type"] not in ("missing", "value_error") else ""
        parts.append(f"{where}: {err['msg']}{got}")
    return "; ".join(parts)


def load_case(folder: Path) -> Case:
    """The case in ``folder``; InputError (subject: the folder) when it cannot be used."""
    subject = str(folder)
    file = folder / CASE_FILE
    if not file.is_file():
        raise InputError(subject, f"no {CASE_FILE}")
    try:
        raw: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(subject, f"{CASE_FILE} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict):
        raise InputError(subject, f"{CASE_FILE} must be a mapping")
    try:
        case = Case.model_validate({**raw, "folder": folder})
    except ValidationError as exc:
        raise InputError(subject, _validation_message(exc)) from exc
    if case.id != folder.name:
        raise InputError(subject, f"id {case.id!r} differs from the folder name {folder.name!r}")
    if Path(case.input).is_absolute() or ".." in Path(case.input).parts:
        raise InputError(subject, f"input {case.input!r} must be relative to the case folder")
    if not case.input_path.exists():
        raise InputError(subject, f"input {case.input!r} does not exist")
    return case


def load_cases(root: Path = CASES_DIR) -> list[Case]:
    """Every case under ``root`` (folders holding a case.yaml), sorted by id; cross-references checked."""
    if not root.is_dir():
        raise InputError(str(root), "not a folder of eval cases")
    cases = [load_case(d) for d in sorted(root.iterdir()) if d.is_dir() and (d / CASE_FILE).exists()]
    if not cases:
        raise InputError(str(root), f"no case folders (each needs a {CASE_FILE})")
    ids = {c.id for c in cases}
    for case in cases:
        ref = case.same_failure_as
        if ref is not None and (ref not in ids or ref == case.id):
            raise InputError(str(case.folder), f"same_failure_as {ref!r} is not another case under {root}")
    return cases


def select(cases: list[Case], *, tags: list[str] | None = None, ids: list[str] | None = None) -> list[Case]:
    """Cases carrying every tag in ``tags`` and, when ``ids`` is given, whose id equals or starts with one."""
    wanted = set(tags or [])
    out = [c for c in cases if wanted <= set(c.tags)]
    if ids:
        out = [c for c in out if any(c.id == i or c.id.startswith(i) for i in ids)]
    return out

"""The known-failure knowledge base: YAML entries that name a failure from the lines that show it.

Like Jenkins Build Failure Analyzer's causes, each entry has indications (regexes, optionally
multi-line or scoped to a job/step name) and a description that may quote their named captures.
Entries ship in ``cimedic/knowledge/*.yaml``; users add their own under ``$CIMEDIC_HOME/knowledge``.
Every entry carries example lines, and ``cimedic kb test`` fails when a regex stops matching them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from cimedic.errors import InputError
from cimedic.models import ActionKind, Category

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"


class Indication(BaseModel):
    pattern: str
    multiline: bool = Field(default=False, description="match across lines of the excerpt, not line by line")
    job: str | None = Field(default=None, description="regex the job name must match")
    step: str | None = Field(default=None, description="regex the step name must match")

    @field_validator("pattern", "job", "step")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value


class Entry(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=3, max_length=120)
    category: Category
    indications: list[Indication] = Field(min_length=1)
    description: str
    remediation: str
    action: ActionKind = ActionKind.NONE
    examples: list[str] = Field(min_length=1, description="real-shaped lines the indications must match")
    source: str | None = Field(default=None, description="where the entry's knowledge comes from")

    @model_validator(mode="after")
    def _description_uses_known_captures(self) -> Entry:
        names = {n for ind in self.indications for n in re.compile(ind.pattern).groupindex}
        unknown = set(re.findall(r"\{(\w+)\}", self.description)) - names
        if unknown:
            raise ValueError(f"description uses captures no indication defines: {sorted(unknown)}")
        return self


@dataclass(frozen=True)
class Match:
    entry: Entry
    captures: dict[str, str]
    text: str  # what the indication matched
    index: int  # which of the given lines it matched on (0 for a multi-line indication)

    @property
    def description(self) -> str:
        return _fill(self.entry.description, self.captures)


def _fill(template: str, captures: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: captures.get(m.group(1), m.group(0)), template)


class KnowledgeBase:
    def __init__(self, entries: Sequence[Entry]) -> None:
        seen: dict[str, Entry] = {}
        for entry in entries:
            seen[entry.id] = entry  # a user's entry with a built-in id replaces the built-in one
        self.entries = list(seen.values())
        self._compiled = [
            (e, [(ind, re.compile(ind.pattern, re.MULTILINE if ind.multiline else 0)) for ind in e.indications])
            for e in self.entries
        ]

    def match(self, lines: Iterable[str], *, job: str | None = None, step: str | None = None) -> list[Match]:
        """Entries whose indications match: line by line, or over the joined text when multi-line.
        Each entry matches at most once, at its first matching line; ordered by that line."""
        lines = list(lines)
        joined = "\n".join(lines)
        found: list[Match] = []
        for entry, indications in self._compiled:
            hit = self._first_hit(indications, lines, joined, job, step)
            if hit is not None:
                found.append(Match(entry, *hit))
        return sorted(found, key=lambda m: m.index)

    @staticmethod
    def _first_hit(
        indications: list[tuple[Indication, re.Pattern[str]]],
        lines: list[str],
        joined: str,
        job: str | None,
        step: str | None,
    ) -> tuple[dict[str, str], str, int] | None:
        for ind, regex in indications:
            if ind.job and not (job and re.search(ind.job, job)):
                continue
            if ind.step and not (step and re.search(ind.step, step)):
                continue
            for index, text in enumerate([joined] if ind.multiline else lines):
                m = regex.search(text)
                if m:
                    caps = {k: v for k, v in m.groupdict().items() if v is not None}
                    return caps, m.group(0), index
        return None

    def failing_examples(self) -> list[tuple[Entry, str]]:
        """(entry, example) pairs where no indication of the entry matches its own example."""
        failures = []
        for entry, indications in self._compiled:
            for example in entry.examples:
                ex_lines = example.split("\n")
                if self._first_hit(indications, ex_lines, example, None, None) is None and not any(
                    ind.job or ind.step for ind, _ in indications
                ):
                    failures.append((entry, example))
        return failures


def load_file(path: Path) -> list[Entry]:
    """Entries of one YAML file (a list of mappings); InputError names the file and the entry."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise InputError(str(path), f"invalid YAML ({' '.join(str(exc).split())})") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(str(path), "a knowledge-base file must be a YAML list of entries")
    return [_entry(path, i, item) for i, item in enumerate(raw)]


def _entry(path: Path, index: int, item: Any) -> Entry:
    try:
        return Entry.model_validate(item)
    except ValidationError as exc:
        ident = item.get("id", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(str(path), f"entry {ident}: {where}: {first['msg']}") from exc


def builtin_files() -> list[Path]:
    root = resources.files("cimedic.knowledge")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))


def load(extra_dirs: Sequence[Path] = ()) -> KnowledgeBase:
    """The shipped entries, then each extra directory's (a later id replaces an earlier one)."""
    files = builtin_files()
    for folder in extra_dirs:
        if folder.is_dir():
            files.extend(sorted(folder.glob("*.yaml")))
    entries: list[Entry] = []
    ids: dict[str, Path] = {}
    for file in files:
        for entry in load_file(file):
            if entry.id in ids and ids[entry.id].parent == file.parent:
                raise InputError(str(file), f"entry {entry.id}: id already used in {ids[entry.id].name}")
            ids[entry.id] = file
            entries.append(entry)
    return KnowledgeBase(entries)

"""The quarantine list: tests whose failures must not fail the build until they earn their way back.

``.cimedic/quarantine.yaml`` lives in the repository, so quarantining is a reviewed change (a PR)
and every runner of the repository sees the same list. Each entry says which test (a pytest node id
or a JUnit ``classname.name``), why, since when, on what evidence, and how: ``skip`` (not run) or
``run`` (run, but its failure never fails the build). A test is released (its entry removed) after
``passes_to_release`` consecutive passes; ``consecutive_passes`` is the running count.

The pytest plugin imports this module inside users' test processes, so it stays light: pydantic,
ruamel.yaml and the standard library. It is edited round-trip (ruamel), so the comments a person
writes in the file survive cimedic's changes. ``python -m cimedic.heal.quarantine export`` writes
the list for other runners (``cimedic.heal.quarantine_cli``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from io import StringIO
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from cimedic.errors import InputError
from cimedic.heal.quarantine_names import Result, aliases, outcome, same_test

PATH = ".cimedic/quarantine.yaml"
VERSION = 1
DEFAULT_PASSES = 20
HEADER = (
    "# Tests quarantined by cimedic or by hand (see docs/quarantine.md). mode: skip (not run) or run (run,\n"
    "# but a failure never fails the build). An entry is removed after passes_to_release passes in a row.\n"
)

Mode = Literal["skip", "run"]


class QuarantineError(InputError):
    """The list cannot be used: one line naming the file and what is wrong."""

    def __init__(self, subject: str, problem: str) -> None:
        super().__init__(subject, " ".join(problem.split()))  # a YAML or OS message may span lines


class Evidence(BaseModel):
    # People add an issue link or a note; the keys cimedic writes are typed, the rest kept as written.
    model_config = ConfigDict(extra="allow")

    run: str | None = Field(default=None, description="URL of a run the test failed in")
    fingerprint: str | None = None
    flake_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    p_flaky: float | None = Field(default=None, ge=0.0, le=1.0, description="P(this failure was flaky)")


class Entry(BaseModel):
    # A misspelt key (passes_to_relase) must be an error, not a silent default.
    model_config = ConfigDict(extra="forbid")

    test: str = Field(min_length=1, description="pytest node id or JUnit classname.name")
    reason: str = Field(min_length=1)
    added: date
    mode: Mode = "skip"
    evidence: Evidence = Field(default_factory=Evidence)
    passes_to_release: int = Field(default=DEFAULT_PASSES, ge=1)
    consecutive_passes: int = Field(default=0, ge=0)

    @field_validator("evidence", mode="before")
    @classmethod
    def _empty_evidence(cls, value: Any) -> Any:
        return {} if value is None else value  # `evidence:` with nothing under it


class ListFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    tests: list[Entry] = Field(default_factory=list)

    @field_validator("tests", mode="before")
    @classmethod
    def _empty_tests(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("tests")
    @classmethod
    def _unique(cls, tests: list[Entry]) -> list[Entry]:
        # Two entries for one test would disagree on mode and counts; which one wins is not for us to guess.
        seen: set[str] = set()
        for entry in tests:
            if aliases(entry.test) & seen:
                raise ValueError(f"test {entry.test!r} is listed twice")
            seen |= aliases(entry.test)
        return tests


class QuarantineList:
    """The list as a validated model plus the round-trip document it came from (comments and all)."""

    def __init__(self, doc: CommentedMap, source: str, indent: tuple[int, int, int] = (2, 4, 2)) -> None:
        self.doc = doc
        self.source = source
        self.indent = indent
        self.entries: list[Entry] = _validate(doc, source).tests

    def find(self, test: str) -> Entry | None:
        return next((e for e in self.entries if aliases(e.test) & aliases(test)), None)

    def _node(self, entry: Entry) -> CommentedMap:
        node: CommentedMap = self.doc["tests"][self.entries.index(entry)]
        return node

    def _refresh(self) -> None:
        self.entries = _validate(self.doc, self.source).tests


def _validate(doc: Any, source: str) -> ListFile:
    if not isinstance(doc, dict):
        raise QuarantineError(source, "not a mapping with `version` and `tests`")
    try:
        return ListFile.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise QuarantineError(source, f"{where or 'file'}: {message}{more}") from None


def _yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long test id over two lines
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return yaml


def empty(source: str = PATH) -> QuarantineList:
    doc = _yaml().load(HEADER + f"version: {VERSION}\ntests: []\n")
    return QuarantineList(doc, source)


def parse(text: str, source: str = PATH) -> QuarantineList:
    if not text.strip():
        return empty(source)
    try:
        doc, indent, offset = load_yaml_guess_indent(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise QuarantineError(source, f"not valid YAML{where}: {problem}") from None
    return QuarantineList(doc, source, _style(indent, offset))


def _style(indent: Any, offset: Any) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indents as the person wrote them, so a rewrite changes only what it must."""
    if isinstance(indent, int) and isinstance(offset, int):
        return max(indent - offset, 2), indent, offset
    if isinstance(indent, int):  # only nested mappings to go by
        return indent, indent + 2, 2
    return 2, 4, 2


def load(path: Path | str) -> QuarantineList:
    """The list at ``path``; a missing file is an empty list (nothing quarantined yet)."""
    path = Path(path)
    if not path.exists():
        return empty(str(path))
    try:
        return parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise QuarantineError(str(path), f"cannot be read: {exc}") from None


def dump(qlist: QuarantineList) -> str:
    out = StringIO()
    _yaml(qlist.indent).dump(qlist.doc, out)
    return out.getvalue()


def save(qlist: QuarantineList, path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(qlist), encoding="utf-8")


def add(
    qlist: QuarantineList,
    test: str,
    reason: str,
    *,
    added: date,
    mode: Mode = "skip",
    evidence: Evidence | None = None,
    passes_to_release: int = DEFAULT_PASSES,
) -> Entry:
    """Quarantine ``test``; already listed, its reason is updated and new evidence merged (one entry)."""
    facts = (evidence or Evidence()).model_dump(exclude_none=True)
    found = qlist.find(test)
    if found is not None:
        node = qlist._node(found)
        node["reason"] = reason
        if facts:
            if not isinstance(node.get("evidence"), dict):
                # Where a new entry has it (after mode), not at the end under the counters.
                at = list(node).index("mode") + 1 if "mode" in node else len(node)
                node.insert(at, "evidence", _block(CommentedMap()))
            node["evidence"].update(facts)
    else:
        tests = qlist.doc.get("tests")
        if not isinstance(tests, list):
            tests = qlist.doc["tests"] = CommentedSeq()
        tests.fa.set_block_style()  # `tests: []` would otherwise grow as a flow sequence
        node = _block(CommentedMap(test=test, reason=reason, added=added, mode=mode))
        if facts:
            node["evidence"] = _block(CommentedMap(facts))
        node["passes_to_release"] = passes_to_release
        node["consecutive_passes"] = 0
        tests.append(node)
    qlist._refresh()
    entry = qlist.find(test)
    assert entry is not None
    return entry


def record(qlist: QuarantineList, results: Iterable[Result]) -> dict[str, int]:
    """Count one run: a listed test that passed gains a pass, one that failed starts again from 0.

    Several results for one test (parameters, reruns) count once: any failure resets. Returns the
    new count of each listed test the run said something about.
    """
    changed: dict[str, int] = {}
    results = list(results)
    for entry in qlist.entries:
        said = [o for r in results if same_test(entry.test, r.test) and (o := outcome(r)) is not None]
        if not said:
            continue
        count = entry.consecutive_passes + 1 if all(said) else 0
        qlist._node(entry)["consecutive_passes"] = count
        changed[entry.test] = count
    qlist._refresh()
    return changed


def release(qlist: QuarantineList) -> list[Entry]:
    """Remove (and return) the entries that reached their passes in a row."""
    done = [e for e in qlist.entries if e.consecutive_passes >= e.passes_to_release]
    for entry in reversed(done):  # from the end, so earlier indexes stay valid
        del qlist.doc["tests"][qlist.entries.index(entry)]
    qlist._refresh()
    return done


def _block(node: CommentedMap) -> CommentedMap:
    node.fa.set_block_style()
    return node


if __name__ == "__main__":
    from cimedic.heal.quarantine_cli import main

    raise SystemExit(main())

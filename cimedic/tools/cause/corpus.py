"""Labeled examples for the cause classifier, from the three places labels come from.

- a dataset folder in the LogChunks layout (``labels.jsonl`` naming each log, ``categories.jsonl``
  with its category, same order), or one ``categories.jsonl`` whose rows name their ``log``;
- the knowledge base: every entry's example lines, labeled with the entry's category;
- the incident memory: every incident people resolved with ``cimedic learn``.

Each example carries a ``group`` (the repository, or the entry's file) so evaluation can hold out
whole groups: a model must never be scored on a repository it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cimedic.errors import InputError
from cimedic.models import Category
from cimedic.redact import redact
from cimedic.tools.cause.features import Signals
from cimedic.tools.knowledge_base import KnowledgeBase
from cimedic.tools.logs.classify import add_knowledge_votes, evidence_votes
from cimedic.tools.logs.rules import score_line


class Example(BaseModel):
    signals: Signals
    category: Category
    group: str
    alt: Category | None = None  # a second acceptable label, when the labeler was unsure


def signals_from_lines(lines: Sequence[str], kb: KnowledgeBase) -> Signals:
    """Signals for bare error lines (a KB example, an incident's stored excerpt): the same line
    rules and knowledge base an investigation applies, without a log around them."""
    clean = [redact(line.rstrip()) for line in lines if line.strip()]
    scored = sorted(((score_line(line), i, line) for i, line in enumerate(clean)), key=lambda t: (-t[0].score, t[1]))
    evidence = [(s, line) for s, _, line in scored if s.rule is not None][:8]
    votes = evidence_votes([(s.rule.category if s.rule else None, s.score) for s, _ in evidence])
    matches = kb.match(clean)
    add_knowledge_votes(votes, [m.entry.category for m in matches])
    return Signals(
        evidence=[line.strip() for _, line in evidence] or clean[:1],
        evidence_rules=[s.rule.name for s, _ in evidence if s.rule is not None],
        excerpt=clean[-40:],
        kb_ids=[m.entry.id for m in matches[:5]],
        kb_categories=[str(m.entry.category) for m in matches[:5]],
        votes={str(k): round(v, 3) for k, v in votes.items()},
    )


def from_knowledge(kb: KnowledgeBase) -> list[Example]:
    return [
        Example(signals=signals_from_lines(example.split("\n"), kb), category=entry.category, group=f"kb:{entry.id}")
        for entry in kb.entries
        for example in entry.examples
    ]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read ({exc})") from exc
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{no}", f"not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{path}:{no}", "each line must be a JSON object")
        rows.append(row)
    return rows


def dataset_rows(root: Path) -> list[tuple[Path, Category, Category | None, str]]:
    """(log path, category, alt, group) for each labeled log of a dataset folder."""
    cats_path = root / "categories.jsonl"
    if not root.is_dir():
        raise InputError(str(root), "not a folder (a dataset is a folder with categories.jsonl)")
    if not cats_path.is_file():
        raise InputError(str(root), "has no categories.jsonl (one {category, log | labels.jsonl row} per line)")
    cats = _read_jsonl(cats_path)
    labels_path = root / "labels.jsonl"
    labels = _read_jsonl(labels_path) if labels_path.is_file() else [{} for _ in cats]
    if len(labels) != len(cats):
        raise InputError(str(root), f"labels.jsonl has {len(labels)} rows but categories.jsonl has {len(cats)}")
    out = []
    for no, (lab, cat) in enumerate(zip(labels, cats, strict=True), 1):
        log = cat.get("log") or lab.get("log")
        try:
            category = Category(str(cat.get("category")))
            alt = Category(cat["alt"]) if cat.get("alt") else None
        except ValueError as exc:
            raise InputError(f"{cats_path}:{no}", f"unknown category ({exc})") from exc
        if not isinstance(log, str):
            raise InputError(f"{cats_path}:{no}", "names no log (a 'log' field here or in labels.jsonl)")
        path = root / log
        if not path.exists():
            raise InputError(f"{cats_path}:{no}", f"log {log} does not exist")
        group = str(cat.get("repo") or lab.get("repo") or Path(log).parent)
        out.append((path, category, alt, group))
    return out


def from_dataset(
    root: Path, analyse: Callable[[Path], Signals], *, jobs: int = 1, progress: Callable[[int], None] | None = None
) -> list[Example]:
    """Run the deterministic analysis over every labeled log (in ``jobs`` processes)."""
    rows = dataset_rows(root)
    paths = [r[0] for r in rows]
    results: Iterable[Signals]
    if jobs > 1:
        pool = ProcessPoolExecutor(jobs)
        results = pool.map(analyse, paths, chunksize=4)
    else:
        pool = None
        results = map(analyse, paths)
    out = []
    try:
        for (_, category, alt, group), sig in zip(rows, results, strict=True):
            out.append(Example(signals=sig, category=category, alt=alt, group=group))
            if progress:
                progress(len(out))
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def from_incidents(incidents: Iterable[tuple[str, Category, Signals | None, str]], kb: KnowledgeBase) -> list[Example]:
    """Learned incidents (id, category, stored signals, excerpt); older ones without signals use their excerpt."""
    out = []
    for ident, category, sig, excerpt in incidents:
        try:
            signals = sig or signals_from_lines(excerpt.splitlines(), kb)
        except ValidationError:
            continue
        out.append(Example(signals=signals, category=category, group=f"incident:{ident}"))
    return out

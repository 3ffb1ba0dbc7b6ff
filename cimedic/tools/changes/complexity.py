"""Cyclomatic complexity of the functions a diff touches, in any language lizard reads.

A change that edits a function with many branches is riskier than one of the same size in
straight-line code; the sum and the maximum of the touched functions' cyclomatic complexity
(McCabe, as lizard counts it) are the features. Only the new version is measured: a function the
change deletes outright touches nothing that remains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cimedic.tools.changes.git import Hunks


@dataclass
class Touched:
    functions: int = 0
    ccn_sum: int = 0
    ccn_max: int = 0
    names: list[str] = field(default_factory=list)


def language_of(path: str) -> str | None:
    """lizard's name for the file's language, or None when lizard has no reader for it."""
    import lizard

    reader = lizard.get_reader_for(path)
    return str(reader.language_names[0]) if reader is not None else None


def touched_complexity(path: str, source: bytes, hunks: Hunks) -> Touched:
    import lizard

    info = lizard.analyze_file.analyze_source_code(path, source.decode("utf-8", "replace"))
    out = Touched()
    for func in info.function_list:
        start, end = int(func.start_line), int(func.end_line)
        if touches(start, end, hunks):
            ccn = int(func.cyclomatic_complexity)
            out.functions += 1
            out.ccn_sum += ccn
            out.ccn_max = max(out.ccn_max, ccn)
            out.names.append(str(func.name))
    return out


def touches(start: int, end: int, hunks: Hunks) -> bool:
    """Whether lines ``start..end`` of the new version hold a changed line or a deletion point."""
    if any(first <= end and last >= start for first, last in hunks.ranges):
        return True
    # Lines removed after new line d sat between d and d+1: inside only if both are in the function.
    return any(start <= d < end for d in hunks.deletions)

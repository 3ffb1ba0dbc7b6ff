"""GitLab's job durations ("1h 30m", "45 minutes", "1 hour", "1h0m0s"), read and written back in
the style they were written in, so a raised ``timeout:`` reads like the line it replaces."""

from __future__ import annotations

import re

_UNIT = re.compile(r"(\d+(?:\.\d+)?)(\s*)(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Minutes in a GitLab duration ("1h 30m", "45 minutes", "1 hour", "1h0m0s"); a bare number is seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+", value):
        return int(value) / 60  # GitLab's parser (chronic_duration) reads a bare number as seconds
    parts = list(_UNIT.finditer(value))
    if not parts or _UNIT.sub("", value).replace("and", "").strip(" ,"):
        raise ValueError(f"{text!r} is not a duration GitLab understands")
    scale = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    return sum(float(p.group(1)) * scale[p.group(3)[0].lower()] for p in parts)


def format_duration(minutes: int, like: str | None) -> str:
    """``minutes`` written the way ``like`` is ("45 minutes" -> "70 minutes", "1h 30m" -> "2h 15m")."""
    parts = list(_UNIT.finditer(like or ""))
    if like is not None and re.fullmatch(r"\s*\d+\s*", like):
        return str(minutes * 60)
    if not parts:
        parts = list(_UNIT.finditer("1h 30m"))
    units = {p.group(3)[0].lower(): p.group(3) for p in parts}
    gap = parts[0].group(2)
    joiner = like[parts[0].end() : parts[1].start()] if like and len(parts) > 1 else " "
    long_form = parts[0].group(3).lower().startswith(("hour", "minute"))  # singular or plural by count
    hours, rest = divmod(minutes, 60) if "h" in units else (0, minutes)
    out = []
    for count, unit, word in ((hours, "h", "hour"), (rest, "m", "minute")):
        if count == 0 and not (unit == "m" and hours == 0):
            continue
        spelled = units.get(unit) or (word if long_form else unit)
        if long_form:
            spelled = word if count == 1 else word + "s"
        out.append(f"{count}{gap}{spelled}")
    return joiner.join(out)

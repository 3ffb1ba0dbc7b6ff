"""Turn a raw log line into the text a person would have seen, for analysis only.

Line numbers are never changed here: callers keep the 1-based number of the raw line (the file
split on ``\\n``), and this module only cleans what is inside one such line.
"""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves, erase-line), OSC sequences (titles, hyperlinks) and the
# odd lone ESC-x pair some tools emit (e.g. keypad mode ``ESC =`` / ``ESC >``).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()#][0-9A-Za-z]?|\x1b")

# Timestamp prefixes that runners add in front of every line:
#   GitHub Actions / Azure DevOps: 2024-05-14T09:12:03.1234567Z
#   Jenkins timestamper:           [2024-05-14T09:12:03.123Z] or [09:12:03]
#   generic:                        2024-05-14 09:12:03,123 / [2024-05-14 09:12:03]
_TIMESTAMP = re.compile(
    r"^(?:\ufeff)?(?:"
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?\s"
    r"|\[\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]\s?"
    r"|\[\d\d:\d\d:\d\d(?:\.\d+)?\]\s"
    r")"
)

# GitLab wraps job phases in ``section_start:<ts>:<name>[<options>]`` markers, followed by an
# erase-line sequence; the marker is structure, not content, so analysis sees what follows it.
_GITLAB_SECTION = re.compile(r"section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def strip_timestamp(text: str) -> str:
    return _TIMESTAMP.sub("", text, count=1)


def visible_text(raw: str) -> str:
    """What a terminal would have left on screen for one ``\\n``-terminated line.

    A carriage return redraws the line, so only the last non-empty redraw survives; that is how
    progress bars collapse to their final state.
    """
    if raw.endswith("\r"):
        raw = raw[:-1]
    if "\r" in raw:
        parts = [p for p in (strip_ansi(s) for s in raw.split("\r")) if p.strip()]
        text = parts[-1] if parts else ""
    else:
        text = strip_ansi(raw) if "\x1b" in raw else raw
    return text


def clean_line(raw: str, max_chars: int = 2000) -> str:
    """Visible text without timestamps or section markers, trimmed to ``max_chars``."""
    if len(raw) > max_chars * 4:
        # Bound the work on pathological single lines before any regex runs over them.
        raw = raw[: max_chars * 4]
    text = visible_text(raw)
    if "section_" in text:
        text = _GITLAB_SECTION.sub("", text)
    text = strip_timestamp(text)
    if len(text) > max_chars:
        text = text[:max_chars] + " …[truncated]"
    return text.rstrip()


def decode(data: bytes) -> str:
    """Logs are mostly UTF-8; anything else must still read, never raise."""
    return data.decode("utf-8", errors="replace")

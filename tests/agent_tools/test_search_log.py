"""search_log over real example logs: hits with line numbers, bounded, errors as data."""

from __future__ import annotations

import json

from cimedic.tools.agent.search_log import MAX_HITS, SearchLog
from tests.conftest import EXAMPLES


def test_finds_the_timeout_line_with_its_number(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = SearchLog(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    out = json.loads(tool.run(pattern=r"has timed out after \d+ minutes"))
    assert out["total"] == 1
    assert out["hits"][0]["line"] == 177
    assert out["hits"][0]["path"] == "gha-timeout.log"


def test_case_insensitive_and_capped(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = SearchLog(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    out = json.loads(tool.run(pattern="Z"))  # every timestamped line
    assert out["total"] > MAX_HITS
    assert len(out["hits"]) == MAX_HITS


def test_bad_pattern_and_unknown_log_come_back_as_errors(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = SearchLog(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    bad = json.loads(tool.run(pattern="(unclosed"))
    assert bad["input"] == "search_log" and "missing )" in bad["error"]
    missing = json.loads(tool.run(pattern="x", path="nope.log"))
    assert "no log named 'nope.log'" in missing["error"]

"""get_log_excerpt: numbered lines around a line, bounded, streamed, errors as data."""

from __future__ import annotations

import io
import json
from typing import BinaryIO

from cimedic.tools.agent.base import OUTPUT_MAX_CHARS, Workspace
from cimedic.tools.agent.get_log_excerpt import MAX_N, GetLogExcerpt
from cimedic.tools.ingest.base import LogFile, RunMaterial
from tests.conftest import EXAMPLES

TIMEOUT_LINES = 190  # wc -l examples/gha-timeout.log, as examples/README.md gives it


def test_lines_around_the_timeout_with_their_numbers(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = GetLogExcerpt(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    out = json.loads(tool.run(job="gha-timeout.log", around_line=177, n=2))
    assert [ln["line"] for ln in out["lines"]] == [175, 176, 177, 178, 179]
    by_no = {ln["line"]: ln["text"] for ln in out["lines"]}
    # Timestamps and colour codes are gone; the text is the runner's own wording.
    assert by_no[177] == "##[error]The action 'Run tests' has timed out after 1 minutes."
    assert "test_drain_after_bad_job" in by_no[176]
    assert out["more_after"] is True and "total_lines" not in out


def test_the_end_of_the_log_is_reported(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = GetLogExcerpt(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    near = json.loads(tool.run(job="gha-timeout.log", around_line=188, n=5))
    assert near["lines"][-1]["line"] == TIMEOUT_LINES and near["total_lines"] == TIMEOUT_LINES
    assert "more_after" not in near and "note" not in near
    past = json.loads(tool.run(job="gha-timeout.log", around_line=5000, n=3))
    assert past["lines"] == [] and past["total_lines"] == TIMEOUT_LINES
    assert past["note"] == f"line 5000 is past the end: the log has {TIMEOUT_LINES} lines"


def test_large_n_is_capped_and_the_answer_stays_whole_json(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = GetLogExcerpt(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    text = tool.run(job="gha-timeout.log", around_line=100, n=10_000)
    assert len(text) <= OUTPUT_MAX_CHARS
    out = json.loads(text)
    numbers = [ln["line"] for ln in out["lines"]]
    assert f"n capped at {MAX_N}" in out["note"]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))  # one contiguous range...
    assert 100 in numbers and min(numbers) >= 100 - MAX_N and max(numbers) <= 100 + MAX_N  # ...around the line


def test_a_job_name_picks_the_log_the_diagnosis_quotes(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = GetLogExcerpt(workspace=workspace_of(EXAMPLES / "gha-pytest-failure.zip"))
    out = json.loads(tool.run(job="test", around_line=31, n=0))
    assert out["path"] == "test/4_Run tests.txt" and out["step"] == "Run tests"
    assert out["lines"] == [{"line": 31, "text": "E       AssertionError: assert Decimal('0.00') == Decimal('20.00')"}]
    assert "job 'test' has 6 logs" in out["note"]


def test_unknown_log_and_bad_line_come_back_as_errors(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = GetLogExcerpt(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    missing = json.loads(tool.run(job="deploy", around_line=3))
    assert missing["input"] == "get_log_excerpt"
    assert "no log or job named 'deploy'; paths: ['gha-timeout.log']" in missing["error"]
    # CrewAI's BaseTool.run validates the arguments; a refusal is an answer too, not an exception.
    zero = json.loads(tool.run(job="gha-timeout.log", around_line=0))
    assert zero["input"] == "get_log_excerpt" and "around_line" in zero["error"]


READ_MAX = 64 * 1024**2


class EndlessLog(io.RawIOBase):
    """A log that never ends: reading it to the end (or into memory) fails instead of hanging."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.line = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.read_bytes > READ_MAX:
            raise OSError(f"read more than {READ_MAX} bytes of a log for a three-line excerpt")
        chunk = bytearray()
        while len(chunk) < len(buffer) - 100:
            self.line += 1
            chunk += f"2024-05-01T10:00:00.0000000Z step output line {self.line}\n".encode()
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)


def test_a_line_near_the_start_of_an_endless_log_is_read_without_reading_it_all(workspace_of) -> None:  # type: ignore[no-untyped-def]
    base = workspace_of(EXAMPLES / "gha-timeout.log")
    streams: list[EndlessLog] = []

    def opener() -> BinaryIO:
        streams.append(EndlessLog())
        return io.BufferedReader(streams[-1])  # type: ignore[return-value]

    material = RunMaterial(run=base.material.run, logs=[LogFile("endless.log", opener)])
    tool = GetLogExcerpt(workspace=Workspace(base.diagnosis, material, base.settings))
    out = json.loads(tool.run(job="endless.log", around_line=1000, n=1))
    assert out["lines"] == [{"line": n, "text": f"step output line {n}"} for n in (999, 1000, 1001)]
    assert out["more_after"] is True
    assert len(streams) == 1 and streams[0].read_bytes <= READ_MAX

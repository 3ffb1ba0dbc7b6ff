"""Arbitrary bytes in, a diagnosis or a clean error out: never a traceback, never a hang."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimedic.errors import InputError
from cimedic.investigate import investigate_path
from cimedic.tools.logs.localize import analyze_log
from cimedic.tools.logs.rules import score_line

LOG_ALPHABET = st.sampled_from(
    [
        b"\n",
        b"\r",
        b"\r\n",
        b"\x1b[31m",
        b"\x1b[0K",
        b"$ make\n",
        b"error: ",
        b"FAILED ",
        b"exited with 1.\n",
        b"##[error]",
        b"section_start:1:x\r",
        b"\xff\xfe",
        b"\x00",
        b"E   assert ",
        b"   at x(Y.java:1)\n",
        b"a" * 50,
    ]
)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LOG_ALPHABET | st.binary(max_size=40), max_size=60))
def test_analysis_of_arbitrary_logs_is_total_and_numbers_lines_in_range(parts: list[bytes]) -> None:
    data = b"".join(parts)
    result = analyze_log("x.log", lambda: io.BytesIO(data))
    total = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert result.total_lines == total
    for item in result.evidence:
        assert 1 <= item.line.no <= max(total, 1)
    if result.excerpt:
        assert result.excerpt[-1].no - result.excerpt[0].no < 40


@settings(max_examples=200, deadline=500)
@given(st.text(max_size=2000))
def test_line_scoring_is_total(text: str) -> None:
    s = score_line(text)
    assert s.score >= 0


@settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=400))
def test_investigating_any_file_gives_a_diagnosis_or_one_line_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "input.log"
    path.write_bytes(data)
    try:
        diag = investigate_path(path)
    except InputError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith(str(path))
    else:
        assert diag.schema_version == 1

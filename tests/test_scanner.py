import io

from cimedic.tools.logs import scanner
from cimedic.tools.logs.scanner import read_range, scan


def _scan(data: bytes, **kw: int) -> scanner.Scan:
    return scan(
        io.BytesIO(data), line_max_chars=kw.get("line_max_chars", 2000), candidates_max=kw.get("candidates_max", 20000)
    )


def test_line_numbers_follow_newlines_only() -> None:
    # Lone \r (progress redraws) and \r\n do not add lines: numbers are of the file split on \n.
    data = b"one\r\ntwo 10%\r100%\nthree\nfour: error here\nfive"
    result = _scan(data)
    assert result.total_lines == 5
    assert [(h.no, h.text) for h in result.hits] == [(4, "four: error here")]
    assert [t.no for t in result.tail] == [1, 2, 3, 4, 5]
    assert result.tail[1].text == "100%"


def test_hits_across_block_boundaries(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(scanner, "BLOCK", 64)
    lines = [f"line {i} ok" if i % 7 else f"line {i} FAILED" for i in range(1, 200)]
    data = ("\n".join(lines) + "\n").encode()
    result = _scan(data)
    assert result.total_lines == 199
    assert [h.no for h in result.hits] == [i for i in range(1, 200) if i % 7 == 0]
    assert all(h.text == f"line {h.no} FAILED" for h in result.hits)
    assert read_range(lambda: io.BytesIO(data), 98, 100, line_max_chars=2000)[0].text == "line 98 FAILED"


def test_single_huge_line_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(scanner, "BLOCK", 1024)
    data = b"start\n" + b"A" * 200_000 + b" error at the end\nafter: error\n"
    result = _scan(data, line_max_chars=200)
    assert result.total_lines == 3
    assert result.long_lines == 1
    assert result.hits[-1].no == 3
    assert all(len(t.text) < 300 for t in result.tail)


def test_candidate_limit_keeps_first_and_latest() -> None:
    data = b"".join(b"error %d\n" % i for i in range(1, 5001))
    result = _scan(data, candidates_max=1200)
    assert result.hits[0].no == 1
    assert result.hits[-1].no == 5000
    assert result.dropped_hits > 0
    assert len(result.hits) <= 1200

"""Streaming first pass over a log: line count, candidate lines and the tail, in bounded memory.

The log is read in large blocks and a single RE2 automaton (linear time, no backtracking) finds
the lines worth a closer look; Python only touches those lines. This is what keeps a 1 GB log
within a small multiple of ``grep``'s time and a fixed memory budget.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import re2

from cimedic.tools.logs.normalize import clean_line, decode

BLOCK = 8 * 1024 * 1024
TAIL_LINES = 400
# Candidates from the start of a log are kept apart from the rolling window of recent ones, so
# the first error survives even when a huge log repeats errors at the end.
HEAD_HITS = 1000

# Lower-cased bytes are searched, so every literal here is lower case. This is a recall net, not
# a judgement: the rules in ``rules.py`` decide what a line means.
_PREFILTER = re2.compile(
    rb"(?m)error|fail|fatal|exception|panic|abort|denied|refused|unable|cannot|can't|could not|couldn't"
    rb"|not found|no such|missing|invalid|undefined|unexpected|timed out|timeout|killed|out of memory"
    rb"|no space|traceback|assert|expected|exited with|exit code|exit status|offen|violation|err!"
    rb"|not ok|segmentation|conflict|unsatisf|no matching|no output has been|\$ |^\+ |##\[|section_start"
    rb"|\[pipeline\] |\bfail|e   |\xe2\x9c\x97|\xe2\x9c\x96|\xe2\x9c\x98|\xc3\x97|not available|denied"
    rb"|warning|deprecat|unknown|unrecognized|incompatible|mismatch|broken|crash|stopped|terminated"
)


@dataclass(slots=True)
class Line:
    no: int  # 1-based number of the raw line, the file split on "\n"
    text: str  # cleaned, see normalize.clean_line


@dataclass
class Scan:
    total_lines: int = 0
    hits: list[Line] = field(default_factory=list)
    tail: list[Line] = field(default_factory=list)
    dropped_hits: int = 0
    long_lines: int = 0


def _blocks(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """Yield (block, ends_with_newline). Blocks end on a line boundary except where a single
    line exceeds ``max_line_bytes``: then its head is yielded once and the rest skipped."""
    pending = b""
    skipping = False
    while True:
        data = stream.read(BLOCK)
        if not data:
            break
        if skipping:
            cut = data.find(b"\n")
            if cut < 0:
                continue
            data = data[cut + 1 :]
            skipping = False
        buf = pending + data if pending else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) > max_line_bytes:
                yield buf[:max_line_bytes], False
                pending, skipping = b"", True
            else:
                pending = buf
            continue
        pending = buf[cut + 1 :]
        yield buf[: cut + 1], True
        if len(pending) > max_line_bytes:
            yield pending[:max_line_bytes], False
            pending, skipping = b"", True
    if pending:
        yield pending, False


def scan(stream: BinaryIO, *, line_max_chars: int, candidates_max: int) -> Scan:
    result = Scan()
    head: list[Line] = []
    recent: deque[Line] = deque(maxlen=max(candidates_max - HEAD_HITS, 100))
    tail: deque[Line] = deque(maxlen=TAIL_LINES)
    max_line_bytes = line_max_chars * 4
    line_base = 0  # lines completed before the current block
    for block, newline_end in _blocks(stream, max_line_bytes):
        lowered = block.lower()
        counted_to, counted_lines, next_free = 0, 0, 0
        for match in _PREFILTER.finditer(lowered):
            pos = match.start()
            if pos < next_free:
                continue  # another match on a line already taken
            start = block.rfind(b"\n", 0, pos) + 1
            end = block.find(b"\n", pos)
            end = len(block) if end < 0 else end
            counted_lines += block.count(b"\n", counted_to, start)
            counted_to = start
            next_free = end + 1
            line = Line(line_base + counted_lines + 1, clean_line(decode(block[start:end]), line_max_chars))
            if len(head) < HEAD_HITS:
                head.append(line)
            else:
                if len(recent) == recent.maxlen:
                    result.dropped_hits += 1
                recent.append(line)
        lines_in_block = block.count(b"\n") + (0 if newline_end else 1)
        if not newline_end and len(block) >= max_line_bytes:
            result.long_lines += 1
        parts = block.rsplit(b"\n", TAIL_LINES + 1)
        if newline_end:
            parts.pop()  # the empty string after the final newline
        last_lines = parts[-TAIL_LINES:]  # parts[0] may be the rest of the block, not one line
        first_no = line_base + lines_in_block - len(last_lines) + 1
        for i, raw in enumerate(last_lines):
            tail.append(Line(first_no + i, clean_line(decode(raw[:max_line_bytes]), line_max_chars)))
        line_base += lines_in_block
    result.total_lines = line_base
    result.hits = head + list(recent)
    result.tail = list(tail)
    return result


def read_range(opener: Callable[[], BinaryIO], first: int, last: int, *, line_max_chars: int) -> list[Line]:
    """Lines ``first``..``last`` (1-based, inclusive) of the log, cleaned: the second pass."""
    out: list[Line] = []
    if last < first:
        return out
    max_line_bytes = line_max_chars * 4
    line_base = 0
    with opener() as stream:
        for block, newline_end in _blocks(stream, max_line_bytes):
            n = block.count(b"\n") + (0 if newline_end else 1)
            if line_base + n >= first:
                parts = block.split(b"\n")
                if newline_end:
                    parts.pop()
                for i, raw in enumerate(parts):
                    no = line_base + i + 1
                    if first <= no <= last:
                        out.append(Line(no, clean_line(decode(raw[:max_line_bytes]), line_max_chars)))
            line_base += n
            if line_base >= last:
                break
    return out

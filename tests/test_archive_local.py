"""LocalArchive on disk: the layout, traversal, atomic replacement, metadata that went stale."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest
from test_archive_contract import EXAMPLES, build_log

from cimedic.archive import ArchiveError, ArchiveKey, LocalArchive
from cimedic.archive.local import SEGMENT_MAX
from cimedic.tools.ingest.local import LogFileOpener

KEY = ArchiveKey("gitlab", "demo-group/inventory", "5523", 1, "compile", "trace")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_layout_is_readable_without_cimedic(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    text = gzip.decompress((EXAMPLES / "javac-compile-error.log.gz").read_bytes())
    log = tmp_path / "trace.log"
    log.write_bytes(text)
    stored = archive.put(KEY, log)

    path = tmp_path / "archive/gitlab/demo-group%2Finventory/5523/1/compile/trace.log.gz"
    assert stored.uri == path.as_uri()
    assert [p.relative_to(tmp_path / "archive").as_posix() for p in all_files(tmp_path / "archive")] == [
        "gitlab/demo-group%2Finventory/5523/1/compile/trace.log.gz",
        "gitlab/demo-group%2Finventory/5523/1/compile/trace.log.json",
    ]
    assert gzip.decompress(path.read_bytes()) == text  # zcat works on it
    # Deterministic bytes: archiving the same log again writes the same file.
    before = path.read_bytes()
    archive.put(KEY, log)
    assert path.read_bytes() == before


def test_traversal_in_names_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    archive = LocalArchive(root)
    log = tmp_path / "a.log"
    log.write_bytes(b"x\n")
    key = ArchiveKey("generic", "../../..", "/etc", 1, "..\\..", "../passwd")
    archive.put(key, log)
    files = all_files(tmp_path)
    assert all(f.is_relative_to(root) or f == log for f in files)
    assert not (tmp_path / "passwd.log.gz").exists()
    assert list(archive.list()) == [key]


def test_long_names_are_cut_but_listed_whole(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    log = tmp_path / "a.log"
    log.write_bytes(b"x\n")
    job = "matrix (" + ", ".join(f"dimension-{i}=välue-{i}" for i in range(30)) + ")"
    keys = [ArchiveKey("github-actions", "o/r", "1", 1, job + suffix, "step") for suffix in ("A", "B")]
    for key in keys:
        archive.put(key, log)
    paths = {archive.path(k) for k in keys}
    assert len(paths) == 2
    assert all(len(p.parent.name) <= SEGMENT_MAX for p in paths)
    assert list(archive.list()) == sorted(keys)
    with archive.open(keys[1]) as fh:
        assert fh.read() == b"x\n"


def test_reader_keeps_the_version_it_opened(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    first = build_log(tmp_path / "first.log", 3 * 1024 * 1024)
    second = tmp_path / "second.log"
    second.write_bytes(b"second attempt\n")
    archive.put(KEY, first)
    with archive.open(KEY) as reader:
        head = reader.read(1000)
        archive.put(KEY, second)  # replaced by rename while the reader is half-way
        rest = reader.read()
    assert head + rest == first.read_bytes()
    with archive.open(KEY) as fh:
        assert fh.read() == b"second attempt\n"


def test_failed_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    whole = (EXAMPLES / "javac-compile-error.log.gz").read_bytes()
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ArchiveError, match="reading the log failed"):
        archive.put(KEY, LogFileOpener(cut, compressed=True))
    assert all_files(tmp_path / "archive") == []
    assert not archive.exists(KEY)


def test_stale_metadata_after_a_crash_is_recomputed(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_bytes(b"old\n" * 100)
    new.write_bytes(b"new log, longer\n" * 100)
    archive.put(KEY, old)
    meta = archive.path(KEY).with_name("trace.log.json")
    old_meta = meta.read_bytes()
    archive.put(KEY, new)
    # The state a crash between the two renames of a replacing put leaves: new data, old metadata.
    meta.write_bytes(old_meta)
    info = archive.info(KEY)
    assert info.sha256 == hashlib.sha256(new.read_bytes()).hexdigest()
    assert info.size == new.stat().st_size


def test_logs_copied_in_by_hand_are_listed(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    folder = root / "jenkins/team%2Fapp/812/1/build"
    folder.mkdir(parents=True)
    (folder / "console.log.gz").write_bytes(gzip.compress(b"Started by timer\n"))
    (folder / ".console.log.gz.abc.tmp").write_bytes(b"half")  # an interrupted write: ignored
    (root / "README").write_text("not a log\n")
    archive = LocalArchive(root)
    key = ArchiveKey("jenkins", "team/app", "812", 1, "build", "console")
    assert list(archive.list()) == [key]
    assert archive.info(key).size == len(b"Started by timer\n")
    archive.delete(key)
    assert os.listdir(folder) == [".console.log.gz.abc.tmp"]


def test_an_unusable_root_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive should be\n")
    log = tmp_path / "a.log"
    log.write_bytes(b"x\n")
    with pytest.raises(ArchiveError) as err:
        LocalArchive(blocker).put(KEY, log)
    assert "cannot create the folder" in str(err.value) and "\n" not in str(err.value)

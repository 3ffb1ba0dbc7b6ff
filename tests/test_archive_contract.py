"""One contract over every log archive: local disk, S3 (moto server over real HTTP) and the in-memory double.

The log is the real javac trace from ``examples/`` (GitLab job, JDK 17), repeated with GitHub-style
timestamps until it is several MB, so every backend streams it in many chunks.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from cimedic.archive import ArchiveError, ArchiveKey, InMemoryArchive, LocalArchive, LogArchive
from cimedic.tools.ingest.local import LogFileOpener

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def build_log(dest: Path, min_bytes: int) -> Path:
    """A multi-MB log made of the real example traces, each line stamped like a GitHub Actions log."""
    lines = gzip.decompress((EXAMPLES / "javac-compile-error.log.gz").read_bytes()).splitlines(keepends=True)
    lines += (EXAMPLES / "gha-timeout.log").read_bytes().splitlines(keepends=True)
    size, n = 0, 0
    with open(dest, "wb") as fh:
        while size < min_bytes:
            for line in lines:
                stamp = (
                    f"2024-05-14T{n // 3600000 % 24:02d}:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z "
                )
                data = stamp.encode() + line
                fh.write(data)
                size += len(data)
                n += 7
    return dest


def s3_test_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(params=["local", "s3", "memory"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> LogArchive:
    if request.param == "local":
        return LocalArchive(tmp_path / "archive")
    if request.param == "memory":
        return InMemoryArchive()
    from cimedic.archive.s3 import S3Archive

    client = s3_test_client(request.getfixturevalue("moto_endpoint"))
    bucket = f"logs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Archive(bucket, "ci/logs", client)


KEY = ArchiveKey("github-actions", "octo-org/inventory", "9912345678", 2, "build / test (3.11)", "Run tests")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_of_a_multi_megabyte_log(archive: LogArchive, tmp_path: Path) -> None:
    log = build_log(tmp_path / "job.log", 6 * 1024 * 1024)
    stored = archive.put(KEY, log)
    assert stored.size == log.stat().st_size
    assert stored.sha256 == sha256_of(log)
    assert 0 < stored.compressed_size < stored.size // 4

    sha = hashlib.sha256()
    with archive.open(KEY) as fh:
        while chunk := fh.read(256 * 1024):
            sha.update(chunk)
    assert sha.hexdigest() == stored.sha256
    assert archive.info(KEY) == stored
    assert archive.exists(KEY)


def test_an_opener_archives_decompressed_bytes(archive: LogArchive, tmp_path: Path) -> None:
    # A local .log.gz input arrives as LogFile.open: the archive stores the text, not gzip-in-gzip.
    opener = LogFileOpener(EXAMPLES / "javac-compile-error.log.gz", compressed=True)
    stored = archive.put(KEY, opener)
    text = gzip.decompress((EXAMPLES / "javac-compile-error.log.gz").read_bytes())
    assert stored.size == len(text)
    with archive.open(KEY) as fh:
        assert fh.read() == text


def test_list_by_prefix_and_delete(archive: LogArchive, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"line one\nline two\n")
    keys = [
        KEY,
        ArchiveKey("github-actions", "octo-org/inventory", "9912345678", 2, "lint", "Run ruff"),
        ArchiveKey("github-actions", "octo-org/inventory", "9912345678", 10, "lint", "Run ruff"),
        ArchiveKey("github-actions", "octo-org/inventory-api", "1", 1, "lint", "Run ruff"),
        ArchiveKey("gitlab", "group/sub/project", "77", 1, "compile", "trace"),
    ]
    for key in keys:
        archive.put(key, log)

    assert list(archive.list()) == sorted(keys)
    # "octo-org/inventory" must not match "octo-org/inventory-api".
    assert list(archive.list(("github-actions", "octo-org/inventory"))) == sorted(keys[:3])
    assert list(archive.list(("github-actions", "octo-org/inventory", "9912345678", 10))) == [keys[2]]
    assert list(archive.list(tuple(KEY.parts()))) == [KEY]
    assert list(archive.list(("travis",))) == []

    archive.delete(keys[1])
    archive.delete(keys[1])  # deleting what is gone is not an error
    assert not archive.exists(keys[1])
    assert list(archive.list(("github-actions", "octo-org/inventory", "9912345678", 2))) == [KEY]


def test_missing_key_is_a_one_line_error(archive: LogArchive) -> None:
    missing = ArchiveKey("jenkins", "folder/job", "404", 1, "build", "console")
    assert not archive.exists(missing)
    for call in (archive.open, archive.info):
        with pytest.raises(ArchiveError) as err:
            call(missing)
        message = str(err.value)
        assert "not in the archive" in message
        assert "\n" not in message


def test_failing_source_keeps_the_previous_log(archive: LogArchive, tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_bytes(b"first attempt\n" * 1000)
    archive.put(KEY, good)

    # A download cut off half-way: the .gz ends early, so reading it fails part-way through.
    whole = (EXAMPLES / "javac-compile-error.log.gz").read_bytes()
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ArchiveError) as err:
        archive.put(KEY, LogFileOpener(cut, compressed=True))
    assert "reading the log failed" in str(err.value)

    with archive.open(KEY) as fh:
        assert fh.read() == good.read_bytes()
    with pytest.raises(ArchiveError, match="cannot read the log"):
        archive.put(KEY, tmp_path / "does-not-exist.log")
    assert list(archive.list()) == [KEY]


def test_awkward_names_round_trip(archive: LogArchive, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"ok\n")
    key = ArchiveKey("azure-devops", "Contoso Web/Fabrikam", "4711", 0, "../../etc/Build (Linux) ☃", "Step %2F 1.log")
    archive.put(key, log)
    assert list(archive.list()) == [key]
    with archive.open(key) as fh:
        assert fh.read() == b"ok\n"


@pytest.mark.parametrize("field", ["platform", "project", "run_id", "job", "name"])
@pytest.mark.parametrize("bad", ["", ".", "..", "a\x00b", "line\nbreak"])
def test_keys_that_could_escape_are_refused(field: str, bad: str) -> None:
    fields = dict(platform="github-actions", project="o/r", run_id="1", attempt=1, job="j", name="n")
    fields[field] = bad
    with pytest.raises(ArchiveError):
        ArchiveKey(**fields)  # type: ignore[arg-type]


def test_attempt_must_be_a_count() -> None:
    with pytest.raises(ArchiveError, match="attempt"):
        ArchiveKey("gitlab", "g/p", "1", -1, "j", "n")
    with pytest.raises(ArchiveError, match="attempt"):
        ArchiveKey("gitlab", "g/p", "1", "2", "j", "n")  # type: ignore[arg-type]


def test_an_empty_log_round_trips(archive: LogArchive, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    stored = archive.put(KEY, empty)
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    with archive.open(KEY) as fh:
        assert fh.read() == b""

"""S3Archive against moto's server over real HTTP: object layout, metadata, multipart, failures.

The log is the real javac trace from ``examples/`` (see test_archive_contract.build_log).
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_archive_contract import build_log, s3_test_client

from cimedic.archive import ArchiveError, ArchiveKey, LocalArchive, archive_for
from cimedic.archive.s3 import PART_MIN, S3Archive, s3_client

KEY = ArchiveKey("gitlab", "demo-group/inventory", "5523", 1, "compile", "trace")


@pytest.fixture
def bucket(moto_endpoint: str) -> tuple[Any, str]:
    client = s3_test_client(moto_endpoint)
    name = f"logs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def test_object_is_plain_gzip_with_checksum_metadata(bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    log = build_log(tmp_path / "job.log", 2 * 1024 * 1024)
    archive = S3Archive(name, "/team-a/ci/", client)
    stored = archive.put(KEY, log)

    object_key = "team-a/ci/gitlab/demo-group%2Finventory/5523/1/compile/trace.log.gz"
    assert stored.uri == f"s3://{name}/{object_key}"
    head = client.head_object(Bucket=name, Key=object_key)
    assert head["Metadata"]["sha256"] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert head["Metadata"]["original-size"] == str(log.stat().st_size)
    assert head["ContentType"] == "application/gzip"
    assert head["ContentLength"] == stored.compressed_size
    # Any S3 tool can fetch it: the object is an ordinary .gz of the log.
    body = client.get_object(Bucket=name, Key=object_key)["Body"].read()
    assert gzip.decompress(body) == log.read_bytes()


def _noisy_log(path: Path, min_bytes: int) -> Path:
    # Build ids and digests in logs barely compress; enough of them push the .gz past one part.
    base = build_log(path.with_suffix(".base"), 64 * 1024).read_bytes().splitlines(keepends=True)
    size, n = 0, 0
    with open(path, "wb") as fh:
        while size < min_bytes:
            for line in base:
                data = hashlib.sha256(str(n).encode()).hexdigest().encode() + b" " + line
                fh.write(data)
                size += len(data)
                n += 1
    return path


def test_large_log_uploads_in_parts(bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    log = _noisy_log(tmp_path / "big.log", 14 * 1024 * 1024)
    archive = S3Archive(name, "", client, part_size=PART_MIN)
    stored = archive.put(KEY, log)
    assert stored.compressed_size > PART_MIN  # so the transfer really was multipart
    head = client.head_object(Bucket=name, Key=archive.object_key(KEY))
    assert head["ETag"].strip('"').endswith("-2")  # S3's ETag of a 2-part upload
    sha = hashlib.sha256()
    with archive.open(KEY) as fh:
        while chunk := fh.read(1024 * 1024):
            sha.update(chunk)
    assert sha.hexdigest() == stored.sha256 == hashlib.sha256(log.read_bytes()).hexdigest()


def test_a_log_that_grows_while_archived_is_refused(bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    log = tmp_path / "live.log"
    log.write_bytes(b"step 1\n")
    reads = 0

    def still_running() -> Any:
        # The job is still writing: every read finds more lines than the one before.
        nonlocal reads
        reads += 1
        with open(log, "ab") as fh:
            fh.write(f"step {reads + 1}\n".encode())
        return open(log, "rb")

    archive = S3Archive(name, "", client)
    with pytest.raises(ArchiveError, match="changed while it was archived"):
        archive.put(KEY, still_running)
    assert not archive.exists(KEY)


def test_missing_bucket_is_one_clear_line(moto_endpoint: str) -> None:
    archive = S3Archive(f"nobody-{uuid.uuid4().hex[:8]}", "x", s3_test_client(moto_endpoint))
    with pytest.raises(ArchiveError) as err:
        archive.info(KEY)
    # HEAD answers have no body, so S3 can only say 404 there: it reads as a missing log.
    assert "not in the archive" in str(err.value)
    with pytest.raises(ArchiveError) as err:
        list(archive.list())
    assert str(err.value).endswith("the bucket does not exist")
    assert "\n" not in str(err.value)


def test_unreachable_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    import boto3
    from botocore.config import Config

    client = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", config=Config(retries={"max_attempts": 1})
    )
    log = tmp_path / "a.log"
    log.write_bytes(b"x\n")
    with pytest.raises(ArchiveError) as err:
        S3Archive("logs", "", client).put(KEY, log)
    assert "cannot reach S3" in str(err.value)
    assert "\n" not in str(err.value)


def test_archive_for_builds_an_s3_client_from_settings(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 takes credentials from its own chain; the test gives it dummy ones and no user config.
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    s3_client("us-east-1", moto_endpoint).create_bucket(Bucket="team-logs")

    archive = archive_for("s3://team-logs/ci", tmp_path / "home" / "archive", moto_endpoint, "us-east-1")
    assert isinstance(archive, S3Archive)
    log = tmp_path / "a.log"
    log.write_bytes(b"hello\n")
    assert archive.put(KEY, log).uri == "s3://team-logs/ci/gitlab/demo-group%2Finventory/5523/1/compile/trace.log.gz"
    assert list(archive.list(("gitlab",))) == [KEY]


def test_archive_for_local_and_bad_urls(tmp_path: Path) -> None:
    default = archive_for(None, tmp_path / "archive", None, None)
    assert isinstance(default, LocalArchive) and default.root == tmp_path / "archive"
    elsewhere = archive_for(f"file://{tmp_path}/other%20dir", tmp_path / "archive", None, None)
    assert isinstance(elsewhere, LocalArchive) and elsewhere.root == tmp_path / "other dir"
    with pytest.raises(ArchiveError, match=r"storage\.googleapis\.com"):
        archive_for("gs://bucket/logs", tmp_path, None, None)
    with pytest.raises(ArchiveError, match="unsupported archive URL"):
        archive_for("ftp://host/logs", tmp_path, None, None)
    with pytest.raises(ArchiveError, match="no bucket"):
        archive_for("s3:///logs", tmp_path, None, None)
    with pytest.raises(ArchiveError, match="minimum"):
        S3Archive("b", "", None, part_size=1024)

"""Local ingest: auto-detection and one-line errors for unusable input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from cimedic.errors import InputError
from cimedic.models import Platform, SourceKind
from cimedic.settings import Limits
from cimedic.tools.ingest.local import ingest_path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _err(path: Path) -> str:
    with pytest.raises(InputError) as err:
        ingest_path(path, Limits())
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return message


def test_missing_path(tmp_path: Path) -> None:
    assert "no such file" in _err(tmp_path / "nope.log")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    assert "empty" in _err(p)


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "a.out"
    p.write_bytes(bytes(range(256)) * 64)
    assert "binary" in _err(p)


def test_corrupt_gzip(tmp_path: Path) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    assert "corrupt gzip" in _err(p)


def test_folder_without_logs(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "picture.png").write_bytes(b"\x89PNG\r\n")
    assert "no CI logs or JUnit reports" in _err(d)


def test_gzip_log_is_read_transparently_and_platform_sniffed(tmp_path: Path) -> None:
    p = tmp_path / "job.log.gz"
    p.write_bytes(gzip.compress(b"Running with gitlab-runner 16.11.0\nERROR: Job failed: exit code 1\n"))
    material = ingest_path(p, Limits())
    assert material.run.source.kind is SourceKind.FILE
    assert material.logs[0].platform is Platform.GITLAB
    with material.logs[0].open() as fh:
        assert fh.read().startswith(b"Running with gitlab-runner")


def test_folder_with_log_and_junit_and_a_hostile_report(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "build.log").write_text("$ pytest\nFAILED tests/test_a.py::test_one - assert 1 == 2\n")
    junit = next((FIXTURES / "junit").rglob("junit.fail.xml"))
    (d / "report.xml").write_bytes(junit.read_bytes())
    (d / "xxe.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<testsuite><testcase name='a'>&e;</testcase></testsuite>"
    )
    material = ingest_path(d, Limits())
    assert material.run.source.kind is SourceKind.DIR
    assert [log.path for log in material.logs] == ["build.log"]
    assert material.run.failed_tests, "failed JUnit cases become evidence"
    assert any("xxe.xml" in w and "XXE" in w for w in material.warnings)

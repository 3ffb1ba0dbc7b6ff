"""GitHub Actions run-logs archives, built in the layout the REST endpoint returns."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cimedic.errors import InputError
from cimedic.models import Platform, SourceKind, Status
from cimedic.settings import Limits
from cimedic.tools.ingest.gha_zip import ingest_zip
from cimedic.tools.ingest.local import ingest_path

TS = "2024-05-14T09:12:03.1234567Z "


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def _log(*lines: str) -> str:
    return "".join(TS + line + "\n" for line in lines)


def test_steps_become_jobs_and_steps_and_the_failing_step_is_marked(tmp_path: Path) -> None:
    test_step = _log(
        "##[group]Run pytest -q",
        "pytest -q",
        "##[endgroup]",
        "E   assert 1 == 2",
        "##[error]Process completed with exit code 1.",
    )
    archive = _zip(
        tmp_path / "logs.zip",
        {
            "0_test.txt": test_step,
            "test/1_Set up job.txt": _log("Current runner version: '2.316.1'"),
            "test/2_Run tests.txt": test_step,
            "lint/1_Run ruff.txt": _log("All checks passed!"),
            "1_lint.txt": _log("All checks passed!"),
        },
    )
    material = ingest_path(archive, Limits())
    assert material.run.source.kind is SourceKind.GHA_ZIP
    assert material.run.platform is Platform.GITHUB_ACTIONS
    assert {j.name for j in material.run.jobs} == {"test", "lint"}
    test_job = next(j for j in material.run.jobs if j.name == "test")
    assert [s.name for s in test_job.steps] == ["Set up job", "Run tests"]
    assert test_job.status is Status.FAILURE
    # Whole-job files repeat the step files and are not analysed twice.
    assert sorted(log.path for log in material.logs) == [
        "lint/1_Run ruff.txt",
        "test/1_Set up job.txt",
        "test/2_Run tests.txt",
    ]


def test_unsafe_and_symlink_members_are_skipped_with_a_warning(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../etc/cron.d/x", "* * * * * root rm -rf /\n")
        zf.writestr("/abs/path.txt", "x\n")
        link = zipfile.ZipInfo("job/2_link.txt")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("job/1_Run tests.txt", _log("error: something broke"))
    material = ingest_zip(archive, Limits())
    assert [log.path for log in material.logs] == ["job/1_Run tests.txt"]
    joined = " ".join(material.warnings)
    assert "'../../etc/cron.d/x' skipped (unsafe path)" in joined
    assert "symbolic link" in joined


def test_corrupt_zip_is_one_line_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 20)
    with pytest.raises(InputError) as err:
        ingest_path(bad, Limits())
    assert str(err.value).startswith(str(bad))
    assert "corrupt zip" in str(err.value)
    assert "\n" not in str(err.value)


def test_zip_bomb_by_declared_size_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", {"job/1_step.txt": "a" * 200_000})
    with pytest.raises(InputError, match="over the limit"):
        ingest_zip(archive, Limits(archive_max_bytes=100_000))


def test_high_ratio_member_is_skipped(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "ratio.zip",
        {"job/1_bomb.txt": "0" * (12 * 1024 * 1024), "job/2_real.txt": _log("FAILED tests/test_a.py::test_x")},
    )
    material = ingest_zip(archive, Limits(archive_max_ratio=50))
    assert [log.path for log in material.logs] == ["job/2_real.txt"]
    assert "zip bomb" in material.warnings[0]

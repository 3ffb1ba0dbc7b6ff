"""The command line, end to end: typer's runner in-process and a real subprocess."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from cimedic.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()
CONTRACT_KEYS = {
    "schema_version",
    "source",
    "category",
    "confidence",
    "summary",
    "excerpt",
    "evidence",
    "failed_tests",
    "backend",
    "timings_ms",
}


def test_rich_report_names_category_and_says_it_ran_offline() -> None:
    result = runner.invoke(app, ["investigate", str(EXAMPLES / "jenkins-gcc-compile-error")])
    assert result.exit_code == 0, result.output
    assert "COMPILE" in result.output
    assert "offline" in result.output
    assert "field_count" in result.output
    assert "56" in result.output


def test_json_follows_the_contract() -> None:
    result = runner.invoke(app, ["investigate", "--json", str(EXAMPLES / "gitlab-pip-dependency.log")])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data.keys() >= CONTRACT_KEYS
    assert data["schema_version"] == 1
    assert data["source"] == {"kind": "file", "path": str(EXAMPLES / "gitlab-pip-dependency.log")}
    assert data["category"] == "dependency"
    assert 0 < data["confidence"] <= 1
    assert data["evidence"][0]["line"] == 62
    assert data["excerpt"]["end_line"] - data["excerpt"]["start_line"] < 40
    assert isinstance(data["timings_ms"]["total"], int)


def test_jsonl_keeps_order_and_a_bad_path_does_not_stop_the_batch(tmp_path: Path) -> None:
    paths = [str(EXAMPLES / "oom-killed.log"), str(tmp_path / "missing.log"), str(EXAMPLES / "tsc-compile-error.log")]
    result = runner.invoke(app, ["investigate", "--jsonl", *paths])
    assert result.exit_code == 2
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r.get("category") for r in rows] == ["resource", None, "compile"]
    assert rows[1] == {"input": paths[1], "error": "no such file or directory"}


def test_markdown_has_the_excerpt_with_line_numbers() -> None:
    result = runner.invoke(app, ["investigate", "--markdown", str(EXAMPLES / "azure-npm-e404.log")])
    assert result.exit_code == 0
    assert result.output.startswith("### cimedic: dependency failure")
    assert "14 | npm ERR! code E404" in result.output


def test_only_one_output_format() -> None:
    result = runner.invoke(app, ["investigate", "--json", "--jsonl", str(EXAMPLES / "oom-killed.log")])
    assert result.exit_code == 2


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cimedic", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_subprocess_investigates_a_zip_and_exits_zero() -> None:
    proc = _cli("investigate", "--json", str(EXAMPLES / "gha-pytest-failure.zip"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["source"]["kind"] == "gha-zip"
    assert data["category"] == "test"
    assert data["evidence"][0]["path"] == "test/4_Run tests.txt"


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    empty = tmp / "empty.log"
    empty.write_bytes(b"")
    binary = tmp / "core.bin"
    binary.write_bytes(bytes(range(256)) * 100)
    corrupt_gz = tmp / "broken.log.gz"
    corrupt_gz.write_bytes(gzip.compress(b"error: x\n" * 1000)[:60])
    corrupt_zip = tmp / "broken.zip"
    corrupt_zip.write_bytes(b"PK\x03\x04not really a zip")
    slip = tmp / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../../outside.txt", "error: escaped\n")
    nologs = tmp / "nologs"
    nologs.mkdir()
    (nologs / "image.png").write_bytes(b"\x89PNG")
    return {
        "missing": tmp / "nope.log",
        "empty": empty,
        "binary": binary,
        "corrupt gzip": corrupt_gz,
        "corrupt zip": corrupt_zip,
        "zip slip": slip,
        "folder without logs": nologs,
    }


def test_bad_inputs_give_one_line_errors_and_exit_2(tmp_path: Path) -> None:
    for label, path in _bad_inputs(tmp_path).items():
        proc = _cli("investigate", str(path), timeout=30)
        assert proc.returncode == 2, (label, proc.stdout, proc.stderr)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(lines) == 1, (label, proc.stderr)
        assert str(path) in lines[0], (label, lines[0])
        assert "Traceback" not in proc.stderr
    assert not (tmp_path.parent / "outside.txt").exists()


def test_ten_megabyte_single_line_is_diagnosed_with_a_warning(tmp_path: Path) -> None:
    log = tmp_path / "huge-line.log"
    log.write_bytes(b"$ ./build.sh\n" + b"x" * (10 * 1024 * 1024) + b"\nsrc/a.c:1:1: error: boom\n")
    proc = _cli("investigate", "--json", str(log))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["evidence"][0]["line"] == 3
    assert any("over-long" in w for w in data["warnings"])


def test_xxe_junit_in_a_folder_is_refused_but_the_log_is_diagnosed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "build.log").write_text("$ pytest\nE   assert 1 == 2\nFAILED tests/test_a.py::test_x - assert 1 == 2\n")
    (run / "report.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<testsuite><testcase name='t'><failure>&x;</failure></testcase></testsuite>"
    )
    proc = _cli("investigate", "--json", str(run))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["category"] == "test"
    assert any("report.xml" in w for w in data["warnings"])
    assert "root:" not in proc.stdout


def test_a_url_that_is_not_a_run_is_refused_in_one_line() -> None:
    proc = _cli("investigate", "https://github.com/o/r/pull/3")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "https://github.com/o/r/pull/3: a GitHub URL, but not of a workflow run" in proc.stderr


def test_version() -> None:
    proc = _cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("cimedic ")


def test_parallel_batch_keeps_input_order(tmp_path: Path) -> None:
    names = ["oom-killed.log", "tsc-compile-error.log", "azure-npm-e404.log", "gha-timeout.log"]
    paths = [str(EXAMPLES / n) for n in names]
    proc = _cli("investigate", "--jsonl", "-j", "2", *paths)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["source"]["path"] for r in rows] == paths
    assert [r["category"] for r in rows] == ["resource", "compile", "dependency", "timeout"]


def test_secrets_in_a_log_never_reach_the_output(tmp_path: Path) -> None:
    token = "ghp_" + "Zx9Qw2" * 6
    log = tmp_path / "leaky.log"
    log.write_text(
        f"$ git push https://ci:{token}@github.com/o/r.git\nexport GITHUB_TOKEN={token}\n"
        f"fatal: Authentication failed for 'https://ci:{token}@github.com/o/r.git/'\n"
    )
    for fmt in ("--json", "--markdown", "--jsonl"):
        proc = _cli("investigate", fmt, str(log))
        assert proc.returncode == 0, proc.stderr
        assert token not in proc.stdout
        assert "[REDACTED:" in proc.stdout
    rich = runner.invoke(app, ["investigate", str(log)])
    assert token not in rich.output


def test_gzip_truncated_after_its_first_block_is_a_one_line_error(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    body = "".join(f"step {i} {rng.random():.12f} ok\n" for i in range(200_000)).encode()
    log = tmp_path / "truncated.log.gz"
    log.write_bytes(gzip.compress(body)[:300_000])
    proc = _cli("investigate", str(log))
    assert proc.returncode == 2, proc.stdout
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and str(log) in lines[0] and "unreadable" in lines[0], proc.stderr

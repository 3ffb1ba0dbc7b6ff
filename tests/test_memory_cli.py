"""``cimedic learn`` and ``cimedic incidents``, registered the way cimedic.cli registers them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cimedic.cli
from cimedic.memory.cli import incidents_app, learn
from cimedic.memory.embed import ONNX_FILE
from cimedic.memory.store import IncidentStore
from cimedic.settings import Settings

pytest_plugins = ["memory_fixtures"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NPM_QUERY = "npm ERR! 404 Not Found - GET https://registry.npmjs.org/@myorg%2fui-kit - package is not in this registry"
TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
runner = CliRunner()


def memory_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def main() -> None:
        """cimedic (test copy)."""

    app.command("learn")(learn)
    app.add_typer(incidents_app, name="incidents")
    return app


def run_console_script(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the real console-script wrapper (cimedic.cli.run) around our commands; returns stderr."""
    monkeypatch.setattr(cimedic.cli, "app", memory_app())
    monkeypatch.setattr(sys, "argv", ["cimedic", *args])
    with pytest.raises(SystemExit) as exited:
        cimedic.cli.run()
    assert exited.value.code == 2
    return capsys.readouterr().err


def learn_args(path: Path, category: str, cause: str, fix: str, *extra: str) -> list[str]:
    return ["learn", str(path), "--category", category, "--cause", cause, "--fix", fix, *extra]


def test_learn_then_search_and_list(home_with_onnx: Settings) -> None:
    app = memory_app()
    npm_link = "https://github.com/acme/web/pull/42"
    npm = runner.invoke(
        app,
        learn_args(
            EXAMPLES / "azure-npm-e404.log", "dependency", "unpublished package", "pin 2.0.3", "--link", npm_link
        ),
    )
    assert npm.exit_code == 0, npm.output
    assert npm.stdout.startswith("learned inc-")
    assert "holds 1 incident(s)" in npm.stdout
    npm_id = npm.stdout.split()[1]
    tests = runner.invoke(app, learn_args(EXAMPLES / "gha-pytest-failure.zip", "TEST", "threshold off by one", ">="))
    assert tests.exit_code == 0, tests.output
    assert "holds 2 incident(s)" in tests.stdout
    # The session's export was used as is: learn found the fast path ready and did not export again.
    assert (home_with_onnx.models_dir / ONNX_FILE).is_symlink()

    found = runner.invoke(app, ["incidents", "search", NPM_QUERY, "-k", "2", "--json"])
    assert found.exit_code == 0, found.output
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert [h["id"] for h in hits][:1] == [npm_id]
    assert hits[0]["category"] == "dependency"
    assert hits[0]["fix"] == "pin 2.0.3"
    assert hits[0]["score"] > hits[1]["score"]

    table = runner.invoke(app, ["incidents", "search", NPM_QUERY, "-k", "1"])
    assert table.exit_code == 0
    assert npm_id in table.stdout
    assert "1 similar incident(s)" in table.stdout

    listed = runner.invoke(app, ["incidents", "list", "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["category"] for r in rows] == ["test", "dependency"]
    assert rows[1]["links"] == [npm_link]
    assert rows[1]["source"] == str(EXAMPLES / "azure-npm-e404.log")
    assert "E404" in rows[1]["excerpt"]
    assert rows[1]["fingerprint"]


def test_learn_stores_no_secret_from_the_log_or_the_flags(home_with_onnx: Settings, tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    log.write_text(
        "$ ./deploy.sh\n"
        "connecting with password=hunter2secret\n"
        f"fatal: Authentication failed for 'https://deploy:{TOKEN}@github.com/acme/app.git/'\n"
        "Error: Process completed with exit code 128.\n"
    )
    result = runner.invoke(
        memory_app(),
        learn_args(log, "config", f"token {TOKEN} had expired", "rotated password=hunter2secret", "--link", log.name),
    )
    assert result.exit_code == 0, result.output
    journal = (home_with_onnx.incidents_dir / "journal.jsonl").read_text()
    assert "Authentication failed" in journal
    assert "[REDACTED:" in journal
    index = (home_with_onnx.incidents_dir / "chroma" / "chroma.sqlite3").read_bytes()
    for secret in ("hunter2secret", TOKEN):
        assert secret not in journal
        assert secret not in result.output
        assert secret.encode() not in index


def test_learn_on_a_missing_path_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.log"
    err = run_console_script(monkeypatch, capsys, *learn_args(missing, "test", "c", "f"))
    assert err.strip() == f"error: {missing}: no such file or directory"
    assert not (tmp_path / "home" / "incidents").exists()


def test_learn_with_an_unknown_category_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_console_script(monkeypatch, capsys, *learn_args(EXAMPLES / "oom-killed.log", "flaky", "c", "f"))
    assert err.count("\n") == 1
    assert "--category: unknown category 'flaky'; one of test, compile, dependency" in err


def test_a_broken_index_says_reindex_and_reindex_repairs_it(
    home_with_onnx: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = memory_app()
    assert runner.invoke(app, learn_args(EXAMPLES / "oom-killed.log", "resource", "heap", "more memory")).exit_code == 0
    shutil.rmtree(home_with_onnx.incidents_dir / "chroma")

    err = run_console_script(monkeypatch, capsys, "incidents", "search", "out of memory")
    assert err.count("\n") == 1
    assert "run `cimedic incidents reindex`" in err

    rebuilt = runner.invoke(app, ["incidents", "reindex"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.startswith("reindexed 1 incident(s) into ")
    hits = runner.invoke(app, ["incidents", "search", "container killed: out of memory", "--json"]).stdout
    assert json.loads(hits.splitlines()[0])["cause"] == "heap"


def test_an_empty_memory_answers_search_and_list_with_nothing() -> None:
    app = memory_app()
    assert runner.invoke(app, ["incidents", "search", "anything", "--json"]).stdout == ""
    assert "0 similar incident(s)" in runner.invoke(app, ["incidents", "search", "anything"]).stdout
    assert runner.invoke(app, ["incidents", "list", "--json"]).stdout == ""
    assert IncidentStore().count() == 0

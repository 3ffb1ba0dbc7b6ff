"""The knowledge base: schema checks, matching, the shipped entries, and ``cimedic kb``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.errors import InputError
from cimedic.models import Category
from cimedic.tools.knowledge_base import Entry, Indication, KnowledgeBase, builtin_files, load, load_file

runner = CliRunner()

ENTRY = """\
# local rules of our team
- id: flaky-redis
  title: Redis test fixture could not connect
  category: infra
  indications:
    - pattern: 'ConnectionError: Error (?P<code>\\d+) connecting to (?P<host>[^:\\s]+):(?P<port>\\d+)'
  description: "tests could not reach Redis at {host}:{port} (error {code})"
  remediation: "Start the Redis service container before the tests."
  action: retry
  examples:
    - "E   redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused."
"""


def _write(folder: Path, text: str, name: str = "team.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_entry_matches_with_captures_filling_the_description(tmp_path: Path) -> None:
    kb = KnowledgeBase(load_file(_write(tmp_path, ENTRY)))
    [match] = kb.match(["collected 3 items", "E   redis.exceptions.ConnectionError: Error 111 connecting to db:6380."])
    assert match.entry.id == "flaky-redis"
    assert match.index == 1
    assert match.captures == {"code": "111", "host": "db", "port": "6380"}
    assert match.description == "tests could not reach Redis at db:6380 (error 111)"


def test_multiline_and_scoped_indications() -> None:
    entry = Entry(
        id="gradle-oom",
        title="Gradle daemon ran out of memory",
        category=Category.RESOURCE,
        indications=[Indication(pattern=r"What went wrong:\n.*Java heap space", multiline=True, job="^build")],
        description="the Gradle daemon ran out of heap",
        remediation="Raise org.gradle.jvmargs -Xmx.",
        examples=["* What went wrong:\nExecution failed: Java heap space"],
    )
    kb = KnowledgeBase([entry])
    lines = ["* What went wrong:", "Execution failed for task ':app:compile': Java heap space"]
    assert kb.match(lines, job="build-linux")
    assert not kb.match(lines, job="test")  # scoped to jobs named build*
    assert kb.failing_examples() == []  # scoped entries cannot be replayed without a job name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- id: x-1\n  title: t\n", "entry x-1"),
        (ENTRY.replace("(?P<port>\\d+)'", "(?P<port>\\d+'"), "invalid regex"),
        (ENTRY.replace("{host}", "{hostname}"), "captures no indication defines"),
        ("id: not-a-list\n", "must be a YAML list"),
        ("- [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_entry_files_are_one_line_errors_naming_file_and_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_file(path)
    assert str(err.value).startswith(str(path))
    assert problem in str(err.value)
    assert "\n" not in str(err.value)


def test_regression_in_a_regex_is_caught_by_replaying_examples(tmp_path: Path) -> None:
    broken = ENTRY.replace("connecting to", "connected to", 1)
    kb = KnowledgeBase(load_file(_write(tmp_path, broken)))
    assert [e.id for e, _ in kb.failing_examples()] == ["flaky-redis"]


def test_user_entry_replaces_a_shipped_one_with_the_same_id(tmp_path: Path) -> None:
    shipped = load().entries
    victim = shipped[0]
    override = ENTRY.replace("flaky-redis", victim.id)
    kb = load([_write(tmp_path / "user", override).parent])
    assert len(kb.entries) == len(shipped)
    assert next(e for e in kb.entries if e.id == victim.id).title == "Redis test fixture could not connect"


def test_shipped_knowledge_base_is_broad_and_every_example_matches() -> None:
    kb = load()
    assert len(builtin_files()) >= 6
    assert len(kb.entries) >= 80
    assert {e.category for e in kb.entries} >= set(Category) - {Category.OTHER}
    assert kb.failing_examples() == []


def test_kb_test_command_passes_on_the_shipped_entries_and_fails_on_a_broken_folder(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["kb", "test"])
    assert ok.exit_code == 0, ok.output
    assert " 0 failed" in ok.output
    broken = _write(tmp_path / "broken", ENTRY.replace("connecting to", "connected to", 1)).parent
    bad = runner.invoke(app, ["kb", "test", str(broken)])
    assert bad.exit_code == 1
    assert "FAIL flaky-redis" in bad.output


def test_kb_add_writes_a_checked_entry_keeping_the_file_comments(tmp_path: Path) -> None:
    target = _write(tmp_path / "kb", ENTRY, "local.yaml")
    args = [
        "kb",
        "add",
        "--id",
        "pg-not-ready",
        "--title",
        "PostgreSQL not accepting connections",
        "--category",
        "infra",
        "--pattern",
        r"could not connect to server: Connection refused.*port (?P<port>\d+)",
        "--example",
        "psql: could not connect to server: Connection refused (0x0000274D/10061) port 5432?",
        "--description",
        "PostgreSQL refused connections on port {port}",
        "--remediation",
        "Wait for pg_isready.",
        "--action",
        "retry",
        "--file",
        str(target),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert text.startswith("# local rules of our team")
    assert [e.id for e in load_file(target)] == ["flaky-redis", "pg-not-ready"]
    again = runner.invoke(app, args)
    assert isinstance(again.exception, InputError)
    assert "already" in str(again.exception)


def test_kb_add_refuses_a_pattern_that_misses_its_example(tmp_path: Path) -> None:
    target = tmp_path / "kb" / "local.yaml"
    result = runner.invoke(
        app,
        [
            "kb",
            "add",
            "--id",
            "never-matches",
            "--title",
            "Never",
            "--category",
            "test",
            "--pattern",
            "nothing like this",
            "--example",
            "E   assert 1 == 2",
            "--description",
            "d",
            "--remediation",
            "r",
            "--file",
            str(target),
        ],
    )
    assert isinstance(result.exception, InputError)
    assert not target.exists()


def test_kb_list_json_lists_every_entry() -> None:
    result = runner.invoke(app, ["kb", "list", "--json", "--category", "timeout"])
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if line.strip()]
    assert rows and all('"category": "timeout"' in r for r in rows)

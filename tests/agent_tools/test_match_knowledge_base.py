"""match_knowledge_base: the shipped knowledge base against real log lines from examples/, pasted raw."""

from __future__ import annotations

import gzip
import json

from cimedic.settings import get_settings
from cimedic.tools.agent.base import OUTPUT_MAX_CHARS
from cimedic.tools.agent.match_knowledge_base import MAX_LINES, MAX_MATCHES, MatchKnowledgeBase
from tests.conftest import EXAMPLES

# The root-cause line of each example (examples/README.md) and the entry that knows it.
ROOT_CAUSES = [
    ("azure-npm-e404.log", 17, "npm-package-not-found"),
    ("gha-timeout.log", 177, "gha-step-timeout"),
    ("oom-killed.log", 62, "oom-killed"),
    ("gitlab-pip-dependency.log", 62, "pip-no-matching-distribution"),
    ("tsc-compile-error.log", 139, "typescript-compile-error"),
    ("javac-compile-error.log.gz", 53, "jvm-compile-error"),
    ("jenkins-gcc-compile-error/consoleText", 56, "c-compile-error"),
]


def lines(name: str, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, split on \\n) of an example log, raw: timestamps and colours kept."""
    opener = gzip.open if name.endswith(".gz") else open
    with opener(EXAMPLES / name, "rt", encoding="utf-8", newline="") as fh:
        return "\n".join(fh.read().split("\n")[first - 1 : last])


def test_raw_npm_lines_name_the_missing_package(workspace_of) -> None:  # type: ignore[no-untyped-def]
    text = lines("azure-npm-e404.log", 14, 17)
    assert "\x1b[" in text and text.startswith("2024-05-14T")  # pasted as the log has them
    out = json.loads(MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "azure-npm-e404.log")).run(text=text))
    assert out["lines_checked"] == 4
    [npm] = out["matches"]
    assert (npm["id"], npm["category"], npm["action"]) == ("npm-package-not-found", "dependency", "none")
    assert npm["captures"] == {"package": "@cimedic-example/design-tokens", "version": "^2.1.0"}
    assert npm["description"] == (
        "the package @cimedic-example/design-tokens does not exist in the configured registry "
        "(or the token cannot see it)"
    )
    assert ".npmrc" in npm["remediation"]
    assert npm["matched"] == "npm ERR! 404  '@cimedic-example/design-tokens@^2.1.0' is not in this registry"


def test_the_timeout_line_suggests_the_timeout_action(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    out = json.loads(tool.run(text=lines("gha-timeout.log", 177, 177)))
    [hit] = out["matches"]
    assert hit["id"] == "gha-step-timeout" and (hit["category"], hit["action"]) == ("timeout", "timeout")
    assert hit["captures"] == {"step": "Run tests", "minutes": "1"}
    assert hit["description"] == "Step 'Run tests' hit its timeout-minutes limit (1 min)"


def test_no_match_is_an_empty_list_with_a_note(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    out = json.loads(tool.run(text=lines("gha-timeout.log", 1, 5)))  # the runner's set-up banner
    assert out == {"lines_checked": 5, "matches": [], "note": "no known-failure entry matches these lines"}


def test_many_failures_come_earliest_line_first_and_bounded(workspace_of) -> None:  # type: ignore[no-untyped-def]
    key = [lines(name, n, n) for name, n, _ in ROOT_CAUSES]
    # The key lines, then a whole log: more lines than are checked, more entries than are returned.
    text = "\n".join([*key, lines("gha-timeout.log", 1, 120), lines("tsc-compile-error.log", 1, 80)])
    answer = MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "gha-timeout.log")).run(text=text)
    assert len(answer) <= OUTPUT_MAX_CHARS
    out = json.loads(answer)
    assert [m["id"] for m in out["matches"]] == [entry for _, _, entry in ROOT_CAUSES][:MAX_MATCHES]
    assert out["lines_checked"] == MAX_LINES
    assert f"{len(ROOT_CAUSES) - MAX_MATCHES} more entries match" in out["note"]
    assert f"only the first {MAX_LINES} lines were checked" in out["note"]


def test_the_teams_own_entries_count_and_a_broken_file_is_an_error(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "oom-killed.log"))
    folder = get_settings().user_knowledge_dir
    folder.mkdir(parents=True)
    (folder / "ours.yaml").write_text(
        "- id: index-build-oom\n  title: The search index build ran out of memory\n  category: resource\n"
        "  indications:\n    - pattern: 'scripts/build_index\\.py'\n  description: the index build\n"
        "  remediation: shard the build\n  action: scale\n  examples: ['+ .venv/bin/python scripts/build_index.py']\n",
        encoding="utf-8",
    )
    ours = json.loads(tool.run(text=lines("oom-killed.log", 1, 77)))
    assert [m["id"] for m in ours["matches"]][:1] == ["index-build-oom"]
    (folder / "broken.yaml").write_text("- id: x\n  title: [unclosed\n", encoding="utf-8")
    broken = json.loads(tool.run(text="Killed"))
    assert broken["input"] == "match_knowledge_base"
    assert "broken.yaml" in broken["error"] and "invalid YAML" in broken["error"]


def test_bad_text_is_an_error_answer(workspace_of) -> None:  # type: ignore[no-untyped-def]
    tool = MatchKnowledgeBase(workspace=workspace_of(EXAMPLES / "gha-timeout.log"))
    for text in ("", "x" * 20_001):
        out = json.loads(tool.run(text=text))
        assert out["input"] == "match_knowledge_base" and "text" in out["error"]

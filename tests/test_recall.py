"""What an investigation remembers: similar incidents after `cimedic learn`, the sequence view with
its divergence from a passing run, and `cimedic train` writing a model later runs use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.investigate import investigate_path
from cimedic.registry import ModelRegistry
from cimedic.settings import Settings, get_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytest_plugins = ["memory_fixtures"]


def test_learned_incident_is_shown_and_votes_in_later_investigations(home_with_onnx: Settings) -> None:
    runner = CliRunner()
    learned = runner.invoke(
        app,
        [
            "learn",
            str(EXAMPLES / "azure-npm-e404.log"),
            "--category",
            "dependency",
            "--cause",
            "scoped package never published",
            "--fix",
            "published @cimedic-example/design-tokens",
        ],
    )
    assert learned.exit_code == 0, learned.output
    diag = investigate_path(EXAMPLES / "azure-npm-e404.log")
    assert diag.similar_incidents and diag.similar_incidents[0].score > 0.9
    assert diag.similar_incidents[0].fix == "published @cimedic-example/design-tokens"
    assert diag.decided_by["similar_incidents"] > 0.5
    # A different failure does not get the npm incident as a close match.
    other = investigate_path(EXAMPLES / "tsc-compile-error.log")
    assert all(i.score < 0.6 for i in other.similar_incidents)
    out = runner.invoke(app, ["investigate", "--markdown", str(EXAMPLES / "azure-npm-e404.log")])
    assert "Similar past incidents" in out.output and "scoped package never published" in out.output


def test_empty_memory_costs_no_model_load(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from cimedic.investigate import investigate_path; "
        f"investigate_path(Path({str(EXAMPLES / 'gitlab-pip-dependency.log')!r})); "
        "print(sorted(m for m in ('torch', 'chromadb', 'sentence_transformers', 'sklearn') if m in sys.modules))"
    )
    env = {"CIMEDIC_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_sequence_shows_the_failing_step_and_divergence_from_a_passing_run(tmp_path: Path) -> None:
    passing = tmp_path / "pass.log"
    failing = tmp_path / "fail.log"
    common = "$ make\ncc -c util.c\nwarning: unused variable 'x'\n"
    passing.write_text(common + "cc -o app util.o main.o\nBuild OK\n")
    failing.write_text(
        common + "main.c:7:3: error: implicit declaration of function 'frob'\nmake: *** [main.o] Error 1\n"
    )
    diag = investigate_path(failing, baseline=passing)
    assert diag.sequence is not None
    templates = [i for i in diag.sequence.items if i.kind == "template"]
    assert [t.line for t in templates] == sorted(t.line for t in templates if t.line)
    assert diag.sequence.divergence is not None and diag.sequence.divergence.line == 4
    zip_diag = investigate_path(EXAMPLES / "gha-pytest-failure.zip")
    assert zip_diag.sequence is not None
    steps = [i for i in zip_diag.sequence.items if i.kind == "step"]
    assert steps[-1].status == "failure" and steps[-1].name == "test / Run tests"
    assert all(s.name.startswith("test / ") for s in steps)


def test_train_registers_a_version_with_metrics_that_investigations_use(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "classifier", "--dataset", str(EXAMPLES), "--folds", "3", "-j", "1"])
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(get_settings().models_dir)
    champion = registry.champion("classifier")
    assert champion is not None and champion.version in result.output
    path = registry.champion_path("classifier")
    assert path is not None
    data = json.loads(path.read_text())
    metrics = data["meta"]["metrics"]
    assert {"combined", "rules_alone", "majority_baseline", "classifier_alone"} <= set(metrics)
    assert metrics["combined"]["n"] == 9 and champion.metrics["combined"]["n"] == 9
    assert data["meta"]["data"]["labeled_logs"] == 9 and data["meta"]["data"]["knowledge_examples"] > 100
    diag = investigate_path(EXAMPLES / "tsc-compile-error.log")
    assert diag.category == "compile" and "classifier" in diag.decided_by
    assert diag.model_versions == {"classifier": champion.version}


def test_train_rejects_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "classifier", "--dataset", str(tmp_path)])
    assert result.exit_code != 0
    assert "categories.jsonl" in str(result.exception)

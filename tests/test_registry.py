"""Model versions: registered with metrics, one champion per kind, promote and roll back from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimedic.cli import app
from cimedic.errors import InputError
from cimedic.registry import ModelRegistry
from cimedic.settings import get_settings

SHIPPED = Path(__file__).resolve().parents[1] / "cimedic" / "knowledge" / "model" / "classifier.json"
runner = CliRunner()


def artifact(tmp_path: Path, name: str, payload: dict[str, object]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def test_register_promote_and_roll_back(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    first = registry.register("predictor", artifact(tmp_path, "p.json", {"v": 1}), metrics={"auc": 0.71}, promote=True)
    second = registry.register("predictor", artifact(tmp_path, "p.json", {"v": 2}), metrics={"auc": 0.74})
    assert registry.champion("predictor") == first
    assert {v.version for v in registry.versions("predictor")} == {first.version, second.version}
    registry.promote("predictor", second.version)
    champion_path = registry.champion_path("predictor")
    assert champion_path is not None and json.loads(champion_path.read_text()) == {"v": 2}
    assert registry.rollback("predictor") == first
    assert [p.action for p in registry.promotions("predictor")] == ["promote", "promote", "rollback"]
    with pytest.raises(InputError, match="no such model version"):
        registry.promote("predictor", "20990101T000000Z-deadbeef")
    with pytest.raises(InputError, match="unknown model kind"):
        registry.versions("forecaster")


def test_rollback_needs_an_earlier_champion(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InputError, match="no promoted model"):
        registry.rollback("classifier")
    registry.register("classifier", artifact(tmp_path, "c.json", {"v": 1}), promote=True)
    with pytest.raises(InputError, match="only model ever promoted"):
        registry.rollback("classifier")


def test_investigations_record_and_follow_the_champion(tmp_path: Path) -> None:
    settings = get_settings()
    registry = ModelRegistry(settings.models_dir)
    version = registry.register("classifier", SHIPPED, metrics={"combined": {"accuracy": 0.8}}, promote=True)
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["version"], r["champion"]) for r in rows] == [(version.version, True)]
    from cimedic.investigate import investigate_path

    example = Path(__file__).resolve().parents[1] / "examples" / "tsc-compile-error.log"
    assert investigate_path(example, record=False).model_versions == {"classifier": version.version}
    table = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert "champion" in table.stdout and "accuracy 0.800" in table.stdout
    refused = runner.invoke(app, ["models", "rollback", "classifier"])
    assert refused.exit_code != 0 and "nothing to roll back to" in str(refused.exception)

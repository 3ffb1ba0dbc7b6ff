"""The configuration of ``cimedic serve`` and ``cimedic sweep``: ``config/serve.yaml``, overridden by
``$CIMEDIC_HOME/serve.yaml`` or a file named on the command line (merged section by section, key by key).

Secrets are not here: the webhook secrets are settings (``cimedic.settings``), read from the environment.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from cimedic.errors import InputError
from cimedic.settings import Settings

FILE_NAME = "serve.yaml"


class SweepConfig(BaseModel):
    repos: list[str] = Field(default_factory=list)
    interval_minutes: float = Field(default=15, ge=0, description="0: no periodic sweep")
    lookback_hours: float = Field(default=24, gt=0)
    limit: int = Field(default=50, ge=1)
    post_digest: bool = True


class WebhookConfig(BaseModel):
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    queue_max: int = Field(default=1000, ge=1)


class TrainConfig(BaseModel):
    enabled: bool = True
    hour: int = Field(default=3, ge=0, le=23)
    minute: int = Field(default=17, ge=0, le=59)
    classifier: bool = True
    predictor: bool = True
    promote: bool = False


class ServeConfig(BaseModel):
    execute: bool = False
    offline: bool = False
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def _read(text: str, name: str) -> dict[str, Any]:
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise InputError(name, f"not valid YAML ({' '.join(str(exc).split())[:200]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(name, "expected a mapping at the top level")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_serve_config(settings: Settings, path: Path | None = None) -> ServeConfig:
    """The shipped config, overridden by ``path`` (else ``$CIMEDIC_HOME/serve.yaml`` when it exists)."""
    data = _read(resources.files("cimedic.config").joinpath(FILE_NAME).read_text(encoding="utf-8"), FILE_NAME)
    own = path if path is not None else settings.home / FILE_NAME
    if path is not None or own.is_file():
        try:
            text = own.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(str(own), f"cannot read the serve config ({exc.strerror or exc})") from exc
        data = _merge(data, _read(text, str(own)))
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(str(own), f"{where}: {first['msg']}") from exc

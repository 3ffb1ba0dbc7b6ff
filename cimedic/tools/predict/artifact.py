"""The failure model on disk: one versioned JSON file, never a pickle.

It holds the feature list and settings, the scorer's numbers (``scorers``), the calibration, the
decision threshold, a small background sample of training feature rows (for explanations), the
metrics measured while fitting and the data window it was fitted on. A model file from someone
else can be read safely and diffed. Written atomically: a crash mid-write leaves the old file.
A ``FlakeRates`` hook is code, not data, and is not saved: set ``model.flake_rates`` after loading
a model that uses ``pr_prev_flaky_share``, or that feature reads as missing.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cimedic.errors import InputError

if TYPE_CHECKING:
    from cimedic.tools.predict.model import FailurePredictor

FORMAT = "cimedic-failure-model"
FORMAT_VERSION = 1


def to_json(model: FailurePredictor) -> dict[str, Any]:
    import numpy as np
    import sklearn

    if model.scorer is None:
        raise InputError("failure model", "not fitted; nothing to save")
    background = model.background if model.background is not None else np.zeros((0, len(model.features)))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fitted_with": {"scikit-learn": sklearn.__version__},
        "config": {"last_n": model.config.last_n, "window_days": model.config.window_days},
        "features": list(model.features),
        "scorer": model.scorer.to_json(),
        "calibration": {"method": "sigmoid", "a": model.calibrator.a, "b": model.calibrator.b},
        "threshold": model.threshold,
        # JSON has no NaN: a missing value in a background row is written as null.
        "background": [[None if np.isnan(v) else float(v) for v in r] for r in background],
        "metrics": model.metrics,
        "window": model.window,
    }


def from_json(data: dict[str, Any]) -> FailurePredictor:
    import numpy as np

    from cimedic.tools.predict.features import ALL_FEATURES, FeatureConfig
    from cimedic.tools.predict.model import FailurePredictor
    from cimedic.tools.predict.scorers import Platt, scorer_from_json

    if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
    features = [str(f) for f in data["features"]]
    unknown = sorted(set(features) - set(ALL_FEATURES))
    if unknown:
        raise ValueError(f"unknown features {unknown[:5]}")
    scorer = scorer_from_json(data["scorer"])
    width = len(getattr(scorer, "medians", features))
    if width != len(features):
        raise ValueError("the scorer and the feature list differ in width")
    background = np.asarray([[np.nan if v is None else v for v in r] for r in data["background"]], float)
    cfg = data["config"]
    return FailurePredictor(
        config=FeatureConfig(last_n=int(cfg["last_n"]), window_days=float(cfg["window_days"])),
        features=features,
        scorer=scorer,
        calibrator=Platt(float(data["calibration"]["a"]), float(data["calibration"]["b"])),
        threshold=float(data["threshold"]),
        background=background.reshape(-1, len(features)),
        metrics=dict(data.get("metrics", {})),
        window=dict(data.get("window", {})),
    )


def save(model: FailurePredictor, path: Path) -> None:
    data = to_json(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"), allow_nan=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is shared like any data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> FailurePredictor:
    try:
        return from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise InputError(str(path), "no such model file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(str(path), f"not a usable failure model ({exc})") from exc

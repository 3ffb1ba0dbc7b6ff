"""Failure prediction: P(a CI run fails) from what was known when it started.

- ``runs``: the runs frame contract (one row per run), ``planned_run`` for a run not yet started,
  and ``time_split``/``cut_at_share`` for time-ordered evaluation.
- ``lrts``: ``lrts_frame``, the LRTS build CSVs as a runs frame.
- ``features``: pre-run, leakage-free features (``build_features``, documented in ``FEATURES``).
- ``model``: ``FailurePredictor`` (fit / predict / explain / save / load) and the ``PreviousResult``
  baseline behind the ``FailureModel`` protocol.
- ``artifact``: the versioned JSON model file.

For a command: load (``FailurePredictor.load``) or fit a model on the store's runs frame; for a run
already in the frame, ``predict(frame)`` and pick its row; for "the next build of PR N",
``planned_run(frame, project=..., job=..., pull_request=...)`` appends it as the last row. Then
``explain(model.features_of(frame).iloc[i])`` names the features behind that probability, and
``model.threshold`` is the cut chosen for F1 on the training window's later runs.

Importing this package is cheap: pandas and numpy load when a function runs, scikit-learn only
to fit or save (predicting and loading a saved model need numpy and pandas alone).
"""

from cimedic.tools.predict.features import FeatureConfig, FlakeRates, build_features
from cimedic.tools.predict.lrts import lrts_frame
from cimedic.tools.predict.model import Contribution, FailureModel, FailurePredictor, PreviousResult
from cimedic.tools.predict.runs import cut_at_share, normalize, planned_run, time_split

__all__ = [
    "Contribution",
    "FailureModel",
    "FailurePredictor",
    "FeatureConfig",
    "FlakeRates",
    "PreviousResult",
    "build_features",
    "cut_at_share",
    "lrts_frame",
    "normalize",
    "planned_run",
    "time_split",
]

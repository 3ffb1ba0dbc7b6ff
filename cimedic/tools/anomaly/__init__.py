"""Anomalies in CI run history: spikes, level shifts, seasonal outliers and odd multi-metric runs.

Entry point: :func:`find_anomalies` over a runs frame (see :mod:`cimedic.tools.anomaly.orchestrate`).
Each detector is one module behind the :class:`Detector` Protocol: ``robust`` (rolling median/MAD,
online), ``level_shift`` (robust CUSUM, online), ``seasonal`` (STL), ``iforest`` (IsolationForest) and
the optional ``prophet_adapter``. Importing this package loads numpy and pydantic only; pandas,
scikit-learn, statsmodels and Prophet are imported when a detector runs.
"""

from __future__ import annotations

from cimedic.tools.anomaly.base import Anomaly, Detector
from cimedic.tools.anomaly.orchestrate import default_detectors, find_anomalies

__all__ = ["Anomaly", "Detector", "default_detectors", "find_anomalies"]

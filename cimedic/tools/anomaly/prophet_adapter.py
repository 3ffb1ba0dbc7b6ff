"""Optional: the seasonal detector with Prophet's model instead of STL (``pip install prophet``).

Prophet (Taylor & Letham 2018) fits trend changepoints plus daily and weekly Fourier seasonality directly
on irregular timestamps, so no regular grid and no interpolation of empty hours are needed, and it
copes with gaps. The price: ~55 MB installed (prophet with its bundled CmdStan model, cmdstanpy,
holidays), about a second to import and 0.1–0.5 s per fit where STL takes milliseconds. Residuals are
scored exactly as :mod:`cimedic.tools.anomaly.seasonal` scores STL's. Not in the default detector set;
pass ``ProphetSeasonal()`` to ``find_anomalies(detectors=...)``. Imported only when a fit runs.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cimedic.errors import CimedicError
from cimedic.tools.anomaly.base import Anomaly, MetricSeries
from cimedic.tools.anomaly.seasonal import DAY, MIN_RUNS, WEEK, SeasonalDetector, score_residuals

if TYPE_CHECKING:
    import pandas as pd


def _prophet_class() -> Any:
    # Prophet logs an ERROR on import when plotly (only its plotting needs it) is missing, and cmdstanpy
    # logs every optimisation at INFO: a sweep over many jobs would drown in both.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    try:
        module = importlib.import_module("prophet")
    except ImportError as exc:
        raise CimedicError("the Prophet seasonal detector needs the optional package: pip install prophet") from exc
    return module.Prophet


class ProphetSeasonal(SeasonalDetector):
    """Runs unusual for their time of day or week, against a Prophet fit of the group's history."""

    name = "prophet"

    def expected(self, series: MetricSeries) -> np.ndarray:
        """Prophet's in-sample prediction (model space) for each value of ``series``."""
        import pandas as pd

        prophet = _prophet_class()
        at = pd.DatetimeIndex(series.at).tz_convert("UTC").tz_localize(None)
        frame = pd.DataFrame({"ds": at, "y": series.y})
        span = at[-1] - at[0]
        # A seasonality is only estimable from at least two of its periods; yearly never is from CI history.
        model = prophet(
            daily_seasonality=bool(span >= 2 * DAY),
            weekly_seasonality=bool(span >= 2 * WEEK),
            yearly_seasonality=False,
            uncertainty_samples=0,
        )
        with warnings.catch_warnings():
            # Prophet's own pandas calls (DataFrame.drop(inplace=True)) warn under pandas 3; nothing to act on.
            warnings.filterwarnings("ignore", message="The inplace keyword")
            model.fit(frame)
            return np.asarray(model.predict(frame[["ds"]])["yhat"], dtype=float)

    def detect(self, runs: pd.DataFrame, metrics: Sequence[str]) -> list[Anomaly]:
        found: list[Anomaly] = []
        for metric in metrics:
            series = MetricSeries.from_runs(runs, metric)
            if len(series) < MIN_RUNS:
                continue
            found += score_residuals(
                series, self.expected(series), detector=self.name, threshold=self.threshold, min_delta=self.min_delta
            )
        return found

"""Flaky-test identification from a run history (issue 6): ``rank_flaky`` and its result model.

Import cost: this package loads numpy, scipy and pandas; only the ``flaky`` command imports it.
"""

from cimedic.tools.flaky.models import FlakyEvidence, FlakyImpact, FlakySignals, FlakyTest, RunnerFailures
from cimedic.tools.flaky.rank import FlakyDetector, class_of, naive_flaky, rank_flaky

__all__ = [
    "FlakyDetector",
    "FlakyEvidence",
    "FlakyImpact",
    "FlakySignals",
    "FlakyTest",
    "RunnerFailures",
    "class_of",
    "naive_flaky",
    "rank_flaky",
]

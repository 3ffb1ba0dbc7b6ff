"""Read an LRTS build CSV into the runs frame (see ``runs``).

Data: the LRTS test-prioritisation dataset, github.com/lrtsuser/LRTS
(artifact/evaluation/ml_data/<project>/{training,testing}_builds.csv; MIT license): Jenkins
pull-request builds of Apache projects, 2020-2023, one row per test stage of a build.

Mapping: one run per (pr_name, build_id); ``run_id`` is ``"{pr_name}#{build_id}"``,
``pull_request`` the PR name, ``branch`` its base branch, ``commit`` the build's head SHA,
``started_at`` the build timestamp (epoch seconds), ``duration_s`` the build duration (seconds),
``finished_at`` their sum. SUCCESS is ``success``; FAILURE and UNSTABLE (tests failed) are
``failure``; ABORTED and NOT_BUILT are ``cancelled``. passcount/failcount/skipcount are the
build's totals, repeated on each of its stage rows (identical on every multi-stage build of the
Kafka and Log4j files), so they are taken once, never summed. Every LRTS project is one Jenkins PR
job, so ``job`` is the project name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cimedic.errors import InputError
from cimedic.history.lrts import STATUS as LRTS_STATUS
from cimedic.history.lrts import LrtsLayout
from cimedic.tools.predict.runs import normalize

if TYPE_CHECKING:
    import pandas as pd

# One mapping of the LRTS layout, shared with the history store's CSV importer.
STATUS = {result: str(status) for result, status in LRTS_STATUS.items()}
COLUMNS = LrtsLayout.required


def lrts_frame(csv_path: Path | str | Sequence[Path | str]) -> pd.DataFrame:
    """The runs frame of an LRTS ``*_builds.csv`` file, sorted by start time.

    Several files are read as one: LRTS split some builds' stage rows between its training and
    testing files, and such a build is still one run.
    """
    import pandas as pd

    paths = [Path(csv_path)] if isinstance(csv_path, (str, Path)) else [Path(p) for p in csv_path]
    subject = ", ".join(str(p) for p in paths)
    parts = []
    for one in paths:
        try:
            parts.append(
                pd.read_csv(one, usecols=list(COLUMNS), dtype={"pr_name": str, "pr_base_branch": str, "project": str})
            )
        except FileNotFoundError as exc:
            raise InputError(str(one), "no such file") from exc
        except ValueError as exc:  # pandas names the missing columns
            raise InputError(str(one), f"not an LRTS builds CSV ({exc})") from exc
    raw = pd.concat(parts, ignore_index=True)
    if raw.empty:
        raise InputError(subject, "no builds")
    keys = ["project", "pr_name", "build_id"]
    # Every field used here is build-level and repeats on each stage row: one row per build.
    builds = raw.groupby(keys, sort=False, as_index=False).first()
    unknown = sorted(set(builds["build_result"].astype(str)) - set(STATUS))
    started = pd.to_datetime(builds["build_timestamp"].astype(float), unit="s", utc=True)
    frame = pd.DataFrame(
        {
            "project": builds["project"].astype(str),
            "run_id": builds["pr_name"].astype(str) + "#" + builds["build_id"].astype(int).astype(str),
            "job": builds["project"].astype(str),
            "branch": builds["pr_base_branch"],
            "pull_request": builds["pr_name"],
            "commit": builds["build_head_sha"],
            "status": builds["build_result"].astype(str).map(STATUS).fillna("unknown"),
            "started_at": started,
            "duration_s": builds["build_duration"].astype(float),
            "queue_s": float("nan"),
            "tests_passed": builds["passcount"].astype(float),
            "tests_failed": builds["failcount"].astype(float),
            "tests_skipped": builds["skipcount"].astype(float),
        }
    )
    if unknown:
        # Kept as "unknown" (never an outcome) rather than guessed; say so once.
        import warnings

        warnings.warn(f"{subject}: unmapped build_result values {unknown} read as unknown", stacklevel=2)
    frame = frame.sort_values(["started_at", "run_id"], kind="stable").reset_index(drop=True)
    return normalize(frame, subject)

"""The LRTS build-history CSV layout: Jenkins pull-request builds of Apache projects, one row per test stage.

Data: the LRTS test-prioritisation dataset, github.com/lrtsuser/LRTS (MIT license),
``artifact/evaluation/ml_data/<project>/{training,testing}_builds.csv``: columns project, pr_name,
pr_base_branch, build_id, build_duration (s), build_timestamp (epoch s), build_result,
build_head_sha, ts_duration, passcount, failcount, skipcount, build_date, trunk_sha, stage_id, ...

Mapping: one run per (project, pr_name, build_id), ``run_id = "{pr_name}#{build_id}"``, platform
jenkins, attempt 1; ``pull_request`` is pr_name, ``branch`` the PR's base branch, ``commit`` the
build's head SHA; ``started_at`` the build timestamp and ``finished_at`` it plus build_duration.
SUCCESS is success; FAILURE and UNSTABLE (tests failed) are failure; ABORTED and NOT_BUILT are
cancelled. Each stage row (Kafka builds per JDK, Log4j per OS) becomes a job named after its
stage_id. passcount, failcount and skipcount are the build's totals, repeated on every stage row
(they are identical on all 3,123 multi-stage builds of the Kafka and Log4j files; the per-stage
figures are num_pass_method/num_fail_method), so they are the run's test counts as they are, never
summed over stages. A stage with failing methods (num_fail_method > 0) is a failed job. Every LRTS
project is one Jenkins PR job, so the run's name (the frames' ``job``) is the project name. The
stage rows of a build are spread over the file (it is sorted by stage, then time); the importer
gathers them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cimedic.history.csv_layout import ColumnError, ParsedRow, count, number, text
from cimedic.models import Job, Platform, RunInfo, Status
from cimedic.store.history_write import RunRecord, TestCounts

STATUS = {
    "SUCCESS": Status.SUCCESS,
    "FAILURE": Status.FAILURE,
    "UNSTABLE": Status.FAILURE,
    "ABORTED": Status.CANCELLED,
    "NOT_BUILT": Status.CANCELLED,
}
# 2100-01-01: a timestamp beyond it is in milliseconds or garbage, not a build time.
_EPOCH_MAX = 4_102_444_800.0
_DEFAULT_STAGE = "build"  # exports without stage_id: one job per build


@dataclass(frozen=True)
class _Stage:
    stage: str
    failed_methods: int | None  # None: the export has no num_fail_method


class LrtsLayout:
    name: str = "lrts"
    platform: Platform = Platform.JENKINS
    required: tuple[str, ...] = (
        "project",
        "pr_name",
        "pr_base_branch",
        "build_id",
        "build_duration",
        "build_timestamp",
        "build_result",
        "build_head_sha",
        "passcount",
        "failcount",
        "skipcount",
    )

    def parse(self, row: Mapping[str, str]) -> ParsedRow:
        project, pr_name = text(row, "project"), text(row, "pr_name")
        build_id = count(row, "build_id")
        result = text(row, "build_result")
        if result not in STATUS:
            raise ColumnError("build_result", f"{result!r} is not one of {', '.join(STATUS)}")
        sha = text(row, "build_head_sha", required=False)
        if sha is not None and len(sha) > 64:
            raise ColumnError("build_head_sha", f"{len(sha)} characters is too long for a commit id")
        shared = (
            ("pr_base_branch", text(row, "pr_base_branch", required=False)),
            ("build_duration", number(row, "build_duration")),
            ("build_timestamp", number(row, "build_timestamp", high=_EPOCH_MAX)),
            ("build_result", result),
            ("build_head_sha", sha),
            ("passcount", count(row, "passcount")),
            ("failcount", count(row, "failcount")),
            ("skipcount", count(row, "skipcount")),
        )
        stage = _Stage(
            stage=text(row, "stage_id", required=False) or _DEFAULT_STAGE,
            failed_methods=count(row, "num_fail_method") if text(row, "num_fail_method", required=False) else None,
        )
        assert project is not None and pr_name is not None  # required=True
        return ParsedRow(project=project, run_id=f"{pr_name}#{build_id}", part=stage.stage, shared=shared, data=stage)

    def assemble(self, rows: Sequence[ParsedRow]) -> RunRecord:
        first = rows[0]
        shared = dict(first.shared)
        status = STATUS[shared["build_result"]]
        started = datetime.fromtimestamp(shared["build_timestamp"], UTC)
        stages: list[_Stage] = [row.data for row in rows]
        jobs = [
            Job(
                name=s.stage,
                id=s.stage,
                platform=Platform.JENKINS,
                # A stage with failing tests failed; in a successful build every stage succeeded.
                # Otherwise the export does not say how the stage ended.
                status=Status.FAILURE
                if s.failed_methods
                else (Status.SUCCESS if status is Status.SUCCESS else Status.UNKNOWN),
            )
            for s in stages
        ]
        info = RunInfo(
            platform=Platform.JENKINS,
            id=first.run_id,
            project=first.project,
            name=first.project,
            number=first.run_id.rsplit("#", 1)[1],
            attempt=1,
            status=status,
            commit=shared["build_head_sha"],
            branch=shared["pr_base_branch"],
            pull_request=first.run_id.rsplit("#", 1)[0],
            event="pull_request",
            started_at=started,
            finished_at=started + timedelta(seconds=shared["build_duration"]),
            jobs=jobs,
        )
        counts = TestCounts(passed=shared["passcount"], failed=shared["failcount"], skipped=shared["skipcount"])
        return RunRecord(info=info, counts=counts)

"""Raise a job's (or a GitHub step's) timeout in a CI definition, changing nothing else in the file.

ruamel.yaml's round-trip composer parses the file and gives every node its exact position; the new
value is then spliced into the original text at that position. Dumping the round-trip tree instead
would keep comments and key order but may re-indent sequences, re-wrap long strings or re-space flow
mappings elsewhere in the file, and a reviewer should see a one-line diff. A missing timeout is
added as one new line, indented like its sibling keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cimedic.heal.durations import format_duration, parse_duration
from cimedic.models import Platform
from cimedic.tools.ci.gitlab_parse import group_name

GITLAB_FILE = ".gitlab-ci.yml"
AZURE_FILE = "azure-pipelines.yml"
WORKFLOWS = ".github/workflows"
# What applies when the file sets nothing: GitHub's documented default for jobs and steps; GitLab
# and Azure take theirs from project/organisation settings cimedic cannot see, so none is assumed.
DEFAULT_MINUTES = {Platform.GITHUB_ACTIONS: 360.0}
# Top-level keys of .gitlab-ci.yml that are not jobs.
_GITLAB_KEYWORDS = {
    "default", "include", "stages", "variables", "workflow", "image", "services", "cache",
    "before_script", "after_script", "types", "spec",
}  # fmt: skip
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}|\$\(.*?\)|\$\[.*?\]")
_KEY = {
    Platform.GITHUB_ACTIONS: "timeout-minutes",
    Platform.GITLAB: "timeout",
    Platform.AZURE_DEVOPS: "timeoutInMinutes",
}


@dataclass(frozen=True)
class TimeoutSetting:
    """Where a job's limit is (or would be) written, and what it is now."""

    job: str  # the job's key (GitHub, GitLab) or id (Azure) in the file
    step: str | None
    minutes: float | None  # None: the file sets none and the platform default is unknown
    line: int | None  # 1-based line of the current value; None when the file sets none


@dataclass(frozen=True)
class _Spot:
    setting: TimeoutSetting
    mapping: MappingNode
    value: ScalarNode | None
    prefer: tuple[str, ...]  # the sibling keys a new line goes after, most wanted first


# -- policy ------------------------------------------------------------------------------------------


def proposed_minutes(
    limit: float | None, observed_s: float | None, *, cap: int, factor: float = 1.5, round_to: int = 5
) -> int:
    """``factor`` × what the job needed (at least its limit: it was stopped there), rounded up to
    ``round_to`` minutes, never above ``cap``. Raises when that is no higher than the current limit."""
    basis = max((x for x in (limit, observed_s / 60 if observed_s else None) if x), default=None)
    if basis is None:
        raise ValueError("neither the current limit nor the job's duration is known")
    minutes = min(math.ceil(basis * factor / round_to) * round_to, cap)
    if limit is not None and minutes <= limit:
        raise ValueError(f"the limit is already {limit:g} min; the cap is {cap} min")
    return minutes


# -- which file --------------------------------------------------------------------------------------


def definition_path(platform: Platform) -> str:
    """The conventional definition file (GitHub has one per workflow: see ``workflow_for``)."""
    if platform is Platform.GITLAB:
        return GITLAB_FILE
    if platform is Platform.AZURE_DEVOPS:
        return AZURE_FILE
    raise ValueError(f"no single CI definition file for {platform}")


def workflow_for(run_name: str | None, files: dict[str, str]) -> str | None:
    """The workflow file (path -> text) whose ``name:``, path, file name or stem is the run's name."""
    wanted = (run_name or "").strip().casefold()
    for path, text in sorted(files.items()):
        root = _root(text, path)
        name = _get(root, "name")
        declared = name.value if isinstance(name, ScalarNode) else None
        stem = path.rsplit("/", 1)[-1]
        # Without `name:` GitHub shows the workflow's path as its name.
        names = {declared} if declared else {path, stem, stem.rsplit(".", 1)[0]}
        if wanted in {n.casefold() for n in names if n}:
            return path
    return None


# -- reading and editing -----------------------------------------------------------------------------


def find_timeout(text: str, platform: Platform, job: str, step: str | None = None) -> TimeoutSetting:
    """The job's (or step's) current limit as the file sets it; ValueError naming the jobs that exist."""
    return _locate(text, platform, job, step).setting


def set_timeout(text: str, platform: Platform, job: str, minutes: int, step: str | None = None) -> str:
    """``text`` with the job's (GitHub: or the step's) limit set to ``minutes``; nothing else changes."""
    spot = _locate(text, platform, job, step)
    key = _KEY[platform]
    if spot.value is not None:
        old = spot.value
        literal = format_duration(minutes, old.value) if platform is Platform.GITLAB else str(minutes)
        quote = old.style if old.style in ("'", '"') else ""
        return text[: old.start_mark.index] + f"{quote}{literal}{quote}" + text[old.end_mark.index :]
    literal = format_duration(minutes, None) if platform is Platform.GITLAB else str(minutes)
    return _insert(text, spot, f"{key}: {literal}")


def _root(text: str, what: str) -> MappingNode:
    try:
        node = YAML(typ="rt").compose(text)
    except Exception as exc:  # ruamel raises a family of YAMLError and a few ValueErrors
        raise ValueError(f"{what} is not valid YAML: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(node, MappingNode):
        raise ValueError(f"{what} is not a YAML mapping")
    return node


def _get(mapping: MappingNode, key: str) -> Node | None:
    # Direct keys only: a value reached through a merge key (<<: *defaults) is shared with other jobs.
    return next((v for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key), None)


def job_forms(name: str) -> set[str]:
    """The names a job can have in the file, from how the platform displays it: "stage / job"
    (GitLab, Azure), "test (3.12)" (a GitHub matrix leg), "rspec 1/3" and "pytest: [3.11]" (GitLab)."""
    forms = {name, name.split(" / ", 1)[-1]}
    forms |= {re.sub(r"\s*\([^()]*\)$", "", f) for f in forms} | {group_name(f) for f in forms}
    return {f.strip().casefold() for f in forms if f.strip()}


def _matches(declared: str, forms: set[str]) -> bool:
    if declared.casefold() in forms:
        return True
    # A GitHub job `name: Test ${{ matrix.python }}` is displayed with the expression filled in.
    pattern = ".+".join(re.escape(part) for part in _EXPRESSION.split(declared))
    return _EXPRESSION.search(declared) is not None and any(re.fullmatch(pattern, f, re.I) for f in forms)


def _jobs(root: MappingNode, platform: Platform) -> list[tuple[str, list[str], MappingNode]]:
    """Every job as (key or id, names it may be shown by, its mapping)."""
    found: list[tuple[str, list[str], MappingNode]] = []
    if platform is Platform.GITHUB_ACTIONS:
        jobs = _get(root, "jobs")
        for k, v in jobs.value if isinstance(jobs, MappingNode) else []:
            if isinstance(v, MappingNode):
                name = _get(v, "name")
                found.append((k.value, [k.value] + ([name.value] if isinstance(name, ScalarNode) else []), v))
    elif platform is Platform.GITLAB:
        for k, v in root.value:
            if isinstance(v, MappingNode) and k.value not in _GITLAB_KEYWORDS and not str(k.value).startswith("."):
                found.append((k.value, [k.value], v))
    elif platform is Platform.AZURE_DEVOPS:
        # Jobs at the root, or in stages; the run shows a staged job as "<stage> / <job>".
        stages = _get(root, "stages")
        groups: list[tuple[list[str], Node | None]] = [([""], _get(root, "jobs"))]
        for stage in stages.value if isinstance(stages, SequenceNode) else []:
            if isinstance(stage, MappingNode):
                groups.append(([""] + [f"{n.value} / " for n in _names(stage, "stage")], _get(stage, "jobs")))
        for prefixes, listed in groups:
            for item in listed.value if isinstance(listed, SequenceNode) else []:
                if isinstance(item, MappingNode) and (names := _names(item, "job", "deployment")):
                    found.append((names[0].value, [p + n.value for p in prefixes for n in names], item))
    else:
        raise ValueError(f"cimedic edits GitHub Actions, GitLab CI and Azure Pipelines definitions, not {platform}")
    return found


def _names(node: MappingNode, *id_keys: str) -> list[ScalarNode]:
    found = [_get(node, k) for k in (*id_keys, "displayName")]
    return [n for n in found if isinstance(n, ScalarNode)]


def _step_names(step: MappingNode) -> list[str]:
    """How GitHub names a step in a run: its `name:`, else "Run <action>" or "Run <first command line>"."""
    name, uses, run = (_get(step, k) for k in ("name", "uses", "run"))
    names = [n.value for n in (name,) if isinstance(n, ScalarNode)]
    names += [f"Run {n.value}" for n in (uses,) if isinstance(n, ScalarNode)]
    names += [f"Run {n.value.strip().splitlines()[0]}" for n in (run,) if isinstance(n, ScalarNode) and n.value.strip()]
    return names


def _locate(text: str, platform: Platform, job: str, step: str | None) -> _Spot:
    root = _root(text, "the CI definition")
    jobs = _jobs(root, platform)
    forms = job_forms(job)
    hits = [(key, m) for key, names, m in jobs if any(_matches(n, forms) for n in names)]
    if len(hits) != 1:
        problem = "matches several jobs" if hits else "is not a job of this file"
        raise ValueError(f"{job!r} {problem}; jobs: {', '.join(k for k, _, _ in jobs) or 'none'}")
    key, mapping = hits[0]
    prefer: tuple[str, ...] = {
        Platform.GITHUB_ACTIONS: ("runs-on", "name", "needs"),
        Platform.GITLAB: ("stage", "image", "extends"),
    }.get(platform, ("displayName", "job", "deployment"))
    if step is not None and platform is Platform.GITHUB_ACTIONS:
        steps = _get(mapping, "steps")
        items = [s for s in (steps.value if isinstance(steps, SequenceNode) else []) if isinstance(s, MappingNode)]
        chosen = [s for s in items if step.casefold() in {n.casefold() for n in _step_names(s)}]
        if len(chosen) != 1:
            known = ", ".join(repr(n[0]) for n in map(_step_names, items) if n)
            raise ValueError(f"step {step!r} of job {key!r}: found {len(chosen)} times; steps: {known or 'none'}")
        mapping, prefer = chosen[0], ("name", "id", "uses")
    value = _get(mapping, _KEY[platform])
    if value is not None and not isinstance(value, ScalarNode):
        raise ValueError(f"the {_KEY[platform]} of {key!r} is not a single value")
    if value is None:
        minutes = DEFAULT_MINUTES.get(platform)
        return _Spot(TimeoutSetting(key, step, minutes, None), mapping, None, prefer)
    if value.anchor is not None or value.start_mark.index < mapping.start_mark.index or _EXPRESSION.search(value.value):
        # An anchor, alias or expression is shared with other jobs or set elsewhere: a person decides.
        raise ValueError(f"the {_KEY[platform]} of {key!r} is {value.value!r}, set indirectly; edit it by hand")
    try:
        minutes = parse_duration(value.value) if platform is Platform.GITLAB else float(value.value)
    except ValueError:
        raise ValueError(f"the {_KEY[platform]} of {key!r} is {value.value!r}, not a number of minutes") from None
    return _Spot(TimeoutSetting(key, step, minutes, value.start_mark.line + 1), mapping, value, prefer)


def _insert(text: str, spot: _Spot, line: str) -> str:
    """``line`` as a new key of the mapping, after a sibling written on one line, at the siblings' indent."""
    if spot.mapping.flow_style:
        raise ValueError(f"{spot.setting.job!r} is written as a flow mapping ({{...}}); edit it by hand")

    def one_line(node: Node) -> bool:
        return getattr(node, "style", None) not in ("|", ">") and node.start_mark.line == node.end_mark.line

    entries = [(k, v) for k, v in spot.mapping.value if isinstance(k, ScalarNode) and one_line(v)]
    if not entries:
        raise ValueError(f"{spot.setting.job!r} has no one-line key to add the timeout after; edit it by hand")
    rank = {name: i for i, name in enumerate(spot.prefer)}
    key, value = min(entries, key=lambda e: rank.get(e[0].value, len(rank)))
    newline = "\r\n" if "\r\n" in text else "\n"
    end = text.find("\n", value.end_mark.index)
    new = " " * int(key.start_mark.column) + line
    if end < 0:
        return text + newline + new + newline
    return text[: end + 1] + new + newline + text[end + 1 :]

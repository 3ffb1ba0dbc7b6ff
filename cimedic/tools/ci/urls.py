"""Which platform, server, project and run a URL names, including self-hosted servers from config.

GitHub and Azure DevOps are told by host (github.com or the configured GitHub Enterprise host;
dev.azure.com, *.visualstudio.com, or the configured Azure DevOps Server). GitLab and Jenkins are
self-hosted under any name, so their URL shapes decide (``/-/pipelines/ID``, ``/job/NAME/N``), and
the configured server URLs tell where the server root ends when it has a path prefix.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cimedic.errors import InputError
from cimedic.models import Platform
from cimedic.settings import Settings
from cimedic.tools.ci.base import RunRef

EXPECTED = (
    "expected a run URL such as github.com/OWNER/REPO/actions/runs/ID, GITLAB/GROUP/PROJECT/-/pipelines/ID, "
    "JENKINS/job/NAME/NUMBER or dev.azure.com/ORG/PROJECT/_build/results?buildId=ID "
    "(self-hosted servers: set CIMEDIC_GITHUB_URL, CIMEDIC_GITLAB_URL, CIMEDIC_JENKINS_URL, CIMEDIC_AZURE_DEVOPS_URL)"
)
_GITHUB_RUN = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions/runs/(?P<run>\d+)(?:/job/(?P<job>\d+))?(?:/|$)")
_GITHUB_REPO = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/?(?:actions/?)?$")
_GITLAB = re.compile(r"^(?P<project>/.+?)/-/(?P<kind>pipelines|jobs)/(?P<id>\d+)(?:/|$)")
_JENKINS_BUILD = re.compile(r"^(?P<root>.*?)(?P<jobs>(?:/job/[^/]+)+)/(?P<number>\d+)(?:/.*)?$")
_JENKINS_JOB = re.compile(r"^(?P<root>.*?)(?P<jobs>(?:/job/[^/]+)+)/?$")
_BLUE_OCEAN = re.compile(
    r"^(?P<root>.*?)/blue/organizations/jenkins/(?P<job>[^/]+)/detail/(?P<branch>[^/]+)/(?P<number>\d+)"
)
_AZURE_BUILD = re.compile(r"^(?P<collection>.*?)/(?P<project>[^/]+)/_build/results/?$")
_AZURE_PROJECT = re.compile(r"^(?P<collection>.*?)/(?P<project>[^/]+)/?(?:_build/?)?$")


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _under(url: str, base: str | None) -> str | None:
    """The path of ``url`` below ``base`` when ``url`` lives on that configured server."""
    if not base:
        return None
    b = urlsplit(base.rstrip("/"))
    u = urlsplit(url)
    if u.netloc.lower() != b.netloc.lower() or not u.path.startswith(b.path):
        return None
    return u.path[len(b.path) :] or "/"


def _github_hosts(settings: Settings) -> set[str]:
    return {"github.com", "www.github.com", _host(settings.github_url)}


def _is_azure(url: str, settings: Settings) -> bool:
    host = _host(url)
    return (
        host == "dev.azure.com"
        or host.endswith(".visualstudio.com")
        or _under(url, settings.azure_devops_url) is not None
    )


def _jenkins_name(jobs: str) -> str:
    """ "/job/app/job/feature%252Flogin" -> "app/feature%2Flogin". Multibranch jobs are named after the
    branch with "/" escaped ("feature%2Flogin"), which URLs quote once more; python-jenkins takes the
    full name with "/" between folders and quotes each segment itself, so each is unquoted once."""
    return "/".join(unquote(seg) for seg in jobs.split("/job/")[1:])


def parse_run_url(url: str, settings: Settings) -> RunRef:
    """A RunRef for ``url``, or an InputError saying what a run URL looks like."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(url, f"not an http(s) URL; {EXPECTED}")
    path = parts.path
    if _host(url) in _github_hosts(settings):
        m = _GITHUB_RUN.match(path)
        if not m:
            raise InputError(url, "a GitHub URL, but not of a workflow run (…/OWNER/REPO/actions/runs/ID[/job/ID])")
        return RunRef(
            platform=Platform.GITHUB_ACTIONS,
            base_url=settings.effective_github_api_url,
            project=f"{m['owner']}/{m['repo']}",
            run_id=m["run"],
            job_id=m["job"],
            url=url,
        )
    if _is_azure(url, settings):
        query = parse_qs(parts.query)
        m = _AZURE_BUILD.match(path)
        build = (query.get("buildId") or [""])[0]
        if not m or not build.isdigit():
            raise InputError(url, "an Azure DevOps URL, but not of a build (…/PROJECT/_build/results?buildId=ID)")
        return RunRef(
            platform=Platform.AZURE_DEVOPS,
            base_url=_root(url) + m["collection"],
            project=unquote(m["project"]),
            run_id=build,
            job_id=query["j"][0] if query.get("j") else None,
            url=url,
        )
    m = _GITLAB.match(path)
    if m:
        below = _under(url, settings.gitlab_url)
        base = settings.gitlab_url.rstrip("/") if below is not None else _root(url)
        project = (below if below is not None else path).split("/-/")[0].strip("/")
        pipeline, job = (m["id"], None) if m["kind"] == "pipelines" else ("", m["id"])
        return RunRef(
            platform=Platform.GITLAB, base_url=base, project=unquote(project), run_id=pipeline, job_id=job, url=url
        )
    below = _under(url, settings.jenkins_url)
    jenkins_path = below if below is not None else path
    server = settings.jenkins_url.rstrip("/") if below is not None and settings.jenkins_url else None
    blue = _BLUE_OCEAN.match(jenkins_path)
    if blue:
        name = unquote(blue["job"]) + "/" + blue["branch"]
        return RunRef(
            platform=Platform.JENKINS,
            base_url=server or _root(url) + blue["root"],
            project=name,
            run_id=blue["number"],
            url=url,
        )
    m = _JENKINS_BUILD.match(jenkins_path)
    if m:
        return RunRef(
            platform=Platform.JENKINS,
            base_url=server or _root(url) + m["root"],
            project=_jenkins_name(m["jobs"]),
            run_id=m["number"],
            url=url,
        )
    raise InputError(url, f"not a CI run URL cimedic knows; {EXPECTED}")


def parse_project(spec: str, settings: Settings) -> tuple[Platform, str, str]:
    """(platform, base_url, project) for `runs list`: a repository/project/job URL, PLATFORM:NAME, or a
    local folder of saved runs.

    ``owner/repo`` alone means GitHub; ``gitlab:group/project``, ``jenkins:folder/job`` and
    ``azure:PROJECT`` use the configured servers (Azure: ``azure:ORG/PROJECT`` on dev.azure.com).
    """
    spec = spec.strip()
    if "://" in spec:
        parts = urlsplit(spec)
        path = parts.path
        if _host(spec) in _github_hosts(settings):
            m = _GITHUB_REPO.match(path)
            if m:
                return Platform.GITHUB_ACTIONS, settings.effective_github_api_url, f"{m['owner']}/{m['repo']}"
        elif _is_azure(spec, settings):
            m = _AZURE_PROJECT.match(path)
            if m:
                return Platform.AZURE_DEVOPS, _root(spec) + m["collection"], unquote(m["project"])
        else:
            below = _under(spec, settings.jenkins_url)
            jm = _JENKINS_JOB.match(below if below is not None else path)
            if jm:
                base = settings.jenkins_url.rstrip("/") if below is not None and settings.jenkins_url else None
                return Platform.JENKINS, base or _root(spec) + jm["root"], _jenkins_name(jm["jobs"])
            below = _under(spec, settings.gitlab_url)
            project = (below if below is not None else path).split("/-/")[0].strip("/")
            if project.count("/") >= 1:
                base = settings.gitlab_url.rstrip("/") if below is not None else _root(spec)
                return Platform.GITLAB, base, unquote(project)
        raise InputError(spec, "not a repository, project or job URL cimedic knows")
    if Path(spec).is_dir():
        # A folder of saved runs (logs, run-log zips, folders): the local provider lists them.
        return Platform.GENERIC, "file://", spec
    prefix, _, name = spec.partition(":")
    if not name:
        prefix, name = "github", spec
    name = name.strip("/")
    if not name:
        raise InputError(spec, "names no project")
    if prefix == "github" and name.count("/") == 1:
        return Platform.GITHUB_ACTIONS, settings.effective_github_api_url, name
    if prefix == "gitlab" and "/" in name:
        return Platform.GITLAB, settings.gitlab_url.rstrip("/"), name
    if prefix == "jenkins":
        if not settings.jenkins_url:
            raise InputError(spec, "set CIMEDIC_JENKINS_URL (the Jenkins server) to name jobs without a URL")
        return Platform.JENKINS, settings.jenkins_url.rstrip("/"), name
    if prefix == "azure":
        org, _, project = name.rpartition("/")
        base = settings.azure_devops_url.rstrip("/")
        if org:
            base = f"{base}/{org}"
        return Platform.AZURE_DEVOPS, base, project
    raise InputError(
        spec, "expected OWNER/REPO, a project URL, or gitlab:GROUP/PROJECT, jenkins:JOB, azure:ORG/PROJECT"
    )

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# azure-devops caches route metadata under ~/.azure-devops as soon as it is imported; tests keep
# theirs in a scratch folder (set before any test module imports the SDK).
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="azure-devops-cache-"))
# No test may reach the internet (CrewAI/OpenTelemetry telemetry and version checks off, litellm's
# bundled price map) or write under $HOME (CrewAI's kickoff-output store).
for _name, _value in (
    ("CREWAI_DISABLE_TELEMETRY", "true"),
    ("CREWAI_DISABLE_VERSION_CHECK", "true"),
    ("OTEL_SDK_DISABLED", "true"),
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("HF_HUB_OFFLINE", "1"),
    ("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="crewai-storage-")),
):
    os.environ.setdefault(_name, _value)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own CIMEDIC_HOME and no user config, so nothing leaks between tests."""
    for key in list(os.environ):
        # Platform tokens the settings also accept must not reach a test server either.
        if key.startswith("CIMEDIC_") or key in ("GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "AZURE_DEVOPS_EXT_PAT"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CIMEDIC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    from cimedic.settings import get_settings

    get_settings.cache_clear()


# The store tests run on SQLite and on the real PostgreSQL at TEST_POSTGRES_URL.
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema (search_path), dropped after the test."""
    import uuid

    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import DBAPIError

    from cimedic.store import dispose_engines
    from cimedic.store.db import display_url

    schema = f"cimedic_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    problem = None
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except DBAPIError as exc:
        problem = " ".join(str(exc.orig).split())
    if problem is not None:  # failed outside the except block, so pytest shows one line, no traceback
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {display_url(PG_URL)} is not reachable ({problem}); "
            "start it or point TEST_POSTGRES_URL at one",
            pytrace=False,
        )
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        dispose_engines()  # before DROP, which waits for sessions using the schema's tables
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test once on a SQLite file in this test's $CIMEDIC_HOME, once on PostgreSQL."""
    if request.param == "sqlite":
        from cimedic.settings import get_settings

        return get_settings().effective_database_url
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Engines are cached per URL for the process; close them so no test inherits another's pool."""
    yield
    from cimedic.store import dispose_engines

    dispose_engines()


@pytest.fixture
def workspace_of():  # type: ignore[no-untyped-def]
    """Build the agent tools' workspace for local material, the way the investigation flow does."""
    from cimedic.investigate import diagnose
    from cimedic.settings import get_settings
    from cimedic.tools.agent.base import Workspace
    from cimedic.tools.ingest.local import ingest_path

    def build(path: Path) -> Workspace:
        settings = get_settings()
        material = ingest_path(path, settings.limits)
        return Workspace(diagnose(material, limits=settings.limits), material, settings)

    return build


# AWS (S3 archive, CloudWatch, Auto Scaling) through boto3 over real HTTP to moto in server mode.
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for boto3 (it reads them itself), and no user AWS config."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))

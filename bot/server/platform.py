"""The small interface every platform adapter implements, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import RepoConfig
from bot.model import Change, Review
from bot.server.queue import Job, JobRequest


class PermanentError(RuntimeError):
    """Retrying will not help (bad credentials, the change is gone): the job fails at once."""


class TransientError(RuntimeError):
    """Worth retrying later (timeouts, 5xx after our own retries)."""


class Skip(Exception):
    """Nothing to do for this job (opted out, closed, stale); the reason is logged."""


@dataclass
class Target:
    """What a platform found for a job before anything is reviewed."""

    key: str  # human-readable, for logs: "github:o/r#12@abc1234"
    config_text: str | None  # the repository config from the base / target branch, if any
    config_source: str = ".patchwarden.yaml"
    context: dict[str, Any] = field(default_factory=dict)  # the adapter's own state
    job_id: int = 0  # set by the worker: marks what this job published, across retries and restarts
    resume: str | None = None  # set by the worker: what ``begin`` returned on an earlier attempt
    attempt: int = 1  # set by the worker: 2 and more after a failure or a restart


class Platform(Protocol):
    name: str

    async def prepare(self, job: Job) -> Target:
        """Resolve the job (current head, opt-outs, the base-branch config). May raise Skip."""

    async def begin(self, target: Target) -> str | None:
        """The scan starts (the repository has not opted out): e.g. an in-progress check run.
        Returns a token the worker keeps for the job (e.g. the check run id), handed back in
        ``target.resume`` to a later attempt so that it continues what this one opened."""

    async def abandon(self, target: Target, reason: str, cancelled: bool) -> None:
        """The scan begun will not publish (``cancelled``: superseded or stopping; else failed or
        retrying): close what ``begin`` opened."""

    async def load_change(self, target: Target, config: RepoConfig, wants: Any) -> Change:
        """Fetch only the changed files the configuration and analyzers want (``wants(path)``)."""

    async def publish(self, target: Target, review: Review, config: RepoConfig) -> None:
        """Post the review: inline comments, the summary, replies on fixed findings."""

    async def report_failure(self, target: Target, reason: str) -> None:
        """The job ends for good without a review: tell the author on the change (and close what
        ``begin`` opened, if ``abandon`` has not)."""

    def health(self) -> str | None:
        """Why this platform cannot serve right now (e.g. its event stream is down), or None."""

    async def refusal(self, request: JobRequest) -> str | None:
        """Why a command (``/rescan``) may not run, decided before it is queued; None admits it."""

    async def answer_refusal(self, request: JobRequest, reason: str) -> None:
        """Tell the requester (once in a while: ``CommandLimits.should_answer``)."""

    async def close(self) -> None: ...

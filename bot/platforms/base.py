"""The neutral platform layer: what the server and every platform adapter agree on.

Dependencies run one way: ``bot.server`` -> ``bot.platforms`` -> the core (``bot.model``,
``bot.pipeline``, ...). This module imports nothing from either side of it but the core model:
the Platform protocol, the job types, the typed target, the errors, and the EventSink a
platform's event sources (webhook routes, an event stream) hand their jobs to.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.config import RepoConfig, Settings
from bot.model import Change, Review

REASON_MAX = 300


def one_line(text: str, limit: int = REASON_MAX) -> str:
    """``text`` on one line, at most ``limit`` characters (for answers and log lines)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def skip_listed(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` (a repository, a project) matches one of the operator's skip globs:
    fnmatch patterns, case-insensitive on every platform."""
    return any(fnmatch.fnmatchcase(name.lower(), pattern.lower()) for pattern in patterns)


# -- errors ---------------------------------------------------------------------------------
class PermanentError(RuntimeError):
    """Retrying will not help (bad credentials, the change is gone): the job fails at once."""


class TransientError(RuntimeError):
    """Worth retrying later (timeouts, 5xx after our own retries)."""


class QueueUnavailable(TransientError):
    """The job queue's store cannot be reached (a Redis server down): webhooks are answered 503,
    so the sender delivers again later, and the Gerrit stream reconnects and catches up."""


class Skip(Exception):
    """Nothing to do for this job (opted out, closed, stale); the reason is logged."""


class Rejected(Exception):
    """The platform refused a batch because of its content (GitHub 422, Gerrit 400)."""


class NotReviewable(Exception):
    """A changed file the bot does not review; the message says why (the summary names the file)."""


class WebhookError(Exception):
    """A delivery refused at intake: a 4xx ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        reason = one_line(reason)
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- jobs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRequest:
    """A job an event asks for, before it is queued. ``payload`` is the platform's own typed
    payload (``GitHubJob`` / ``GerritJob``) as a JSON-ready dict; only the platform reads it,
    except ``payload["revision"]`` (the queue's ``once_per_revision``)."""

    kind: str  # review | rescan | ignore (bot.platforms.commands.COMMANDS)
    key: str  # jobs with the same key supersede each other (e.g. "github:o/r#12")
    payload: dict[str, Any]
    once_per_revision: bool = False  # automatic events: skip a revision already reviewed


@dataclass(frozen=True)
class Job:
    """A queued job, as a worker claims it."""

    id: int
    platform: str
    kind: str
    key: str  # jobs with the same key supersede each other (e.g. "github:o/r#12")
    payload: dict[str, Any]
    attempts: int
    created: float


@dataclass(frozen=True)
class Enqueued:
    """The outcome of an enqueue: the new job, or why nothing was queued."""

    job_id: int | None
    superseded: list[int]
    skipped: str | None = None  # "duplicate delivery" | "revision already reviewed"


DUPLICATE_DELIVERY = "duplicate delivery"
ALREADY_REVIEWED = "revision already reviewed"
SCAN_UNDER_WAY = "a scan of this change is already under way"


@dataclass
class Decision:
    """What a delivery amounts to: jobs to queue, or a reason it was ignored."""

    jobs: list[JobRequest] = field(default_factory=list)
    ignored: str | None = None


@dataclass
class Target:
    """What a platform found for a job before anything is reviewed. Each platform subclasses it
    with the typed state it keeps between ``prepare`` and ``publish``."""

    key: str  # human-readable, for logs: "github:o/r#12@abc1234"
    config_text: str | None  # the repository config from the base / target branch, if any
    config_source: str = ".patchwarden.yaml"
    job_id: int = 0  # set by the worker: marks what this job published, across retries and restarts
    resume: str | None = None  # set by the worker: what ``begin`` returned on an earlier attempt
    attempt: int = 1  # set by the worker: 2 and more after a failure or a restart


#: Whether the analyzers want a changed file (``Engine.wants``): the others are not fetched.
Wants = Callable[[str], bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler


class SharedStore(Protocol):
    """State a fleet of processes shares (the server wires it to Redis with ``server.queue_url``;
    a single process has none, and platforms then keep it in memory as before)."""

    async def reserve(self, name: str, limits: Sequence[tuple[int, float]], interval: float = 0.0) -> float:
        """Count one request in every (requests, seconds) window of ``limits`` for ``name`` and
        return 0, or return the seconds to wait before asking again (nothing is counted then)."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds."""

    async def exclusive(
        self, name: str, body: Callable[[], Awaitable[None]], standby: Callable[[bool], None]
    ) -> None:
        """Run ``body`` only while this process holds the fleet-wide lease ``name``: wait for it
        (``standby(True)``), run, and cancel ``body`` if the lease is lost; until cancelled."""


class EventSink(Protocol):
    """What the server offers a platform's event sources: the queue's door and a little state."""

    async def enqueue(self, platform: str, request: JobRequest, delivery_id: str | None = None) -> Enqueued:
        """Persist a job (a redelivered ``delivery_id`` queues nothing); supersede older ones."""

    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str) -> None: ...

    def warn_once(self, key: str, message: str) -> None:
        """Log ``message`` as a warning the first time ``key`` is seen by this service."""


class Platform(Protocol):
    name: str

    def routes(self) -> list[Route]:
        """The HTTP endpoints of this platform (webhooks); registered when the app is built."""

    def share(self, store: SharedStore | None) -> None:
        """Before start: what the processes of a fleet share (write pacing, tokens, the event
        stream's lease), or None for a single process (kept in memory)."""

    def start(self, sink: EventSink) -> list[Coroutine[Any, Any, None]]:
        """The service starts: keep ``sink`` for the routes; return the background tasks to run
        (e.g. an event stream) until the service stops."""

    async def prepare(self, job: Job) -> Target:
        """Resolve the job (current head, opt-outs, the base-branch config). May raise Skip."""

    async def begin(self, target: Target) -> str | None:
        """The scan starts (the repository has not opted out): e.g. an in-progress check run.
        Returns a token the worker keeps for the job (e.g. the check run id), handed back in
        ``target.resume`` to a later attempt so that it continues what this one opened."""

    async def abandon(self, target: Target, reason: str, cancelled: bool) -> None:
        """The scan begun will not publish (``cancelled``: superseded or stopping; else failed or
        retrying): close what ``begin`` opened."""

    async def close_begun(self, job: Job, token: str, reason: str) -> None:
        """Close what ``begin`` opened (``token``) on an earlier attempt of ``job``, which ended
        without running again: superseded while it waited after a kill, or skipped on its retry.
        No attempt of it is under way to hand a target to, so only the job is given."""

    async def load_change(self, target: Target, config: RepoConfig, wants: Wants) -> Change:
        """Fetch only the changed files the configuration and analyzers want (``wants(path)``)."""

    async def publish(self, target: Target, change: Change, review: Review, config: RepoConfig) -> None:
        """Post the review of ``change``: inline comments, the summary, replies on fixed findings."""

    async def report_failure(self, target: Target, reason: str) -> None:
        """The job ends for good without a review: tell the author on the change (and close what
        ``begin`` opened, if ``abandon`` has not)."""

    def health(self) -> str | None:
        """Why this platform cannot serve right now (e.g. its event stream is down), or None."""

    async def refusal(self, request: JobRequest) -> str | None:
        """Why a command (``/rescan``) may not run, decided before it is queued; None admits it."""

    async def answer_refusal(self, request: JobRequest, reason: str) -> None:
        """Tell the requester (once in a while: ``CommandLimits.should_answer``)."""

    async def run_command(self, request: JobRequest) -> str:
        """Carry out an admitted command that is not queued (``/ignore``: record the decision,
        answer on the thread); returns what was done, for the logs. Never raises."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class PlatformSpec:
    """How the server finds a platform (bot.platforms.registry): whether the settings configure
    it, the start-up check of its settings (ConfigError naming what to set), and its constructor."""

    name: str
    enabled: Callable[[Settings], bool]
    check: Callable[[Settings], None]
    build: Callable[[Settings], Platform]
    paths: tuple[str, ...] = ()  # its webhook paths, answered 404 with a reason when not configured

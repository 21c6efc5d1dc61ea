"""Prometheus metrics (prometheus_client, on a registry of our own).

No label value comes from outside unchecked: webhook and event labels are taken only from the
fixed sets below, anything else counts as ``other`` (so an unauthenticated sender cannot create
series). Callers label a rejected, unauthenticated delivery with ``event=None`` (``other``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
OTHER = "other"

PLATFORMS = frozenset({"github", "gerrit"})
# what a GitHub App or repository webhook with the documented events delivers
GITHUB_EVENTS = frozenset(
    {
        "check_run",
        "check_suite",
        "github_app_authorization",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "meta",
        "ping",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "push",
    }
)
# Gerrit's event types (Documentation/cmd-stream-events.txt, EventTypes) and the replication plugin's
GERRIT_EVENTS = frozenset(
    {
        "assignee-changed",
        "batch-ref-updated",
        "change-abandoned",
        "change-deleted",
        "change-merged",
        "change-restored",
        "comment-added",
        "custom-keyed-values-changed",
        "dropped-output",
        "hashtags-changed",
        "patchset-created",
        "private-state-changed",
        "project-created",
        "project-head-updated",
        "ref-replicated",
        "ref-replication-done",
        "ref-replication-scheduled",
        "ref-updated",
        "reviewer-added",
        "reviewer-deleted",
        "topic-changed",
        "vote-deleted",
        "wip-state-changed",
    }
)
EVENT_NAMES = {"github": GITHUB_EVENTS, "gerrit": GERRIT_EVENTS}
OUTCOMES = frozenset({"queued", "ignored", "duplicate"}) | {str(code) for code in range(400, 500)}


def _known(value: Any, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


def event_label(platform: str, name: Any) -> str:
    """``name`` if it is a known event of ``platform``, else ``other``."""
    return _known(name, EVENT_NAMES.get(platform, frozenset()))


class _Webhooks:
    """``labels(platform, event, outcome)`` with every value from a fixed set."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    def labels(self, platform: Any, event: Any, outcome: Any) -> Any:
        return self.counter.labels(
            _known(platform, PLATFORMS), event_label(str(platform), event), _known(str(outcome), OUTCOMES)
        )


class _StreamEvents:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    def labels(self, type_: Any) -> Any:
        return self.counter.labels(event_label("gerrit", type_))


WEBHOOKS = _Webhooks(
    Counter(
        "patchwarden_webhooks_total",
        "Webhook deliveries by outcome",
        ["platform", "event", "outcome"],
        registry=REGISTRY,
    )
)
EVENTS = _StreamEvents(
    Counter("patchwarden_stream_events_total", "Gerrit stream events by type", ["type"], registry=REGISTRY)
)
JOBS = Counter(
    "patchwarden_jobs_total", "Finished jobs by outcome", ["platform", "outcome"], registry=REGISTRY
)
QUEUE = Gauge("patchwarden_queue_jobs", "Jobs in the queue by state", ["state"], registry=REGISTRY)
QUEUE_AGE = Gauge(
    "patchwarden_queue_oldest_pending_seconds",
    "Age of the oldest pending job (scale workers on this and on pending jobs)",
    registry=REGISTRY,
)
REVIEW_SECONDS = Histogram(
    "patchwarden_review_seconds",
    "From job start to posted review",
    ["platform"],
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
#: Label values are analyzer names (a fixed set: the engine's analyzers), never input.
ANALYZER_SECONDS = Histogram(
    "patchwarden_analyzer_seconds",
    "One analyzer's run on one change",
    ["analyzer"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
SEMGREP_FILES = Counter(
    "patchwarden_semgrep_files",
    "Files Semgrep scanned, by who answered: the warm server, or the CLI (cold, or what the server declined)",
    ["path"],
    registry=REGISTRY,
)
PIPELINE_SECONDS = Histogram(
    "patchwarden_pipeline_seconds",
    "One review in the engine (workspace, analyzers, filter, render)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
COMMENTS = Counter(
    "patchwarden_comments_posted_total", "Inline comments posted", ["platform"], registry=REGISTRY
)
#: action: resolve | unresolve | read (the threads' ids) | reopen (Gerrit); outcome: done | failed.
THREAD_UPDATES = Counter(
    "patchwarden_thread_updates_total",
    "Review threads resolved or reopened by the bot, and the failures to",
    ["platform", "action", "outcome"],
    registry=REGISTRY,
)
TRIAGE = Counter(
    "patchwarden_triage_commands_total",
    "/ignore commands by outcome (ignored, refused, failed)",
    ["platform", "outcome"],
    registry=REGISTRY,
)
STREAM_CONNECTED = Gauge(
    "patchwarden_gerrit_stream_connected", "1 while the SSH event stream is up", registry=REGISTRY
)

STREAM_DOWN_SECONDS = Gauge(
    "patchwarden_gerrit_stream_down_seconds",
    "How long the SSH event stream has been down (0 while it is up)",
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)

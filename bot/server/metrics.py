"""Prometheus metrics (prometheus_client, on a registry of our own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "patchwarden_webhooks_total",
    "Webhook deliveries by outcome",
    ["platform", "event", "outcome"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "patchwarden_stream_events_total", "Gerrit stream events by type", ["type"], registry=REGISTRY
)
JOBS = Counter(
    "patchwarden_jobs_total", "Finished jobs by outcome", ["platform", "outcome"], registry=REGISTRY
)
QUEUE = Gauge("patchwarden_queue_jobs", "Jobs in the queue by state", ["state"], registry=REGISTRY)
REVIEW_SECONDS = Histogram(
    "patchwarden_review_seconds",
    "From job start to posted review",
    ["platform"],
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
COMMENTS = Counter(
    "patchwarden_comments_posted_total", "Inline comments posted", ["platform"], registry=REGISTRY
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

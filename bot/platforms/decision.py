"""What an event amounts to, for every platform's sans-I/O event handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.server.queue import JobRequest


@dataclass
class Decision:
    """What a delivery amounts to: jobs to queue, or a reason it was ignored."""

    jobs: list[JobRequest] = field(default_factory=list)
    ignored: str | None = None

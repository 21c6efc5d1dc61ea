"""Admission of commands (``/rescan``, ``/ignore``) before they reach the queue.

The commands are registered here, in :data:`COMMANDS`: each says whether an admitted request
is queued (``/rescan``: a review job) or carried out at once by the platform
(``/ignore``: ``Platform.run_command``, a triage decision and its answer).

Who may trigger what is decided while the event is handled, never in the worker: a command that
is refused must not touch the queue, so it cannot supersede, cancel or delay a real review.
Two checks, in order: the platform's trust rule (group membership on Gerrit, author association
on GitHub) and rate limits per change and per requester, so nobody can mail a change's owner
once a second. Each refusal is answered once per requester and change within the window, so the
answers cannot be turned into spam either.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import CommandSettings

if TYPE_CHECKING:
    from bot.platforms.base import Enqueued, EventSink, JobRequest, Platform, SharedStore

log = logging.getLogger(__name__)


@dataclass
class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds for each key (in this process)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        events = self._events.setdefault(key, deque())
        cutoff = self.clock() - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        return events

    def allows(self, key: str) -> bool:
        return len(self._recent(key)) < self.limit

    def record(self, key: str) -> None:
        self._recent(key).append(self.clock())

    def retry_in(self, key: str) -> float:
        events = self._recent(key)
        return max(0.0, events[0] + self.window - self.clock()) if events else 0.0


@dataclass(frozen=True)
class Command:
    name: str  # the job kind and the word after the slash
    queued: bool  # admitted requests go to the queue (else Platform.run_command carries them out)
    done: str  # past participle for the rate-limit answer ("this change was rescanned 3 times")
    noun: str  # plural for the per-user answer ("asked for 20 rescans")


COMMANDS = {
    "rescan": Command("rescan", queued=True, done="rescanned", noun="rescans"),
    "ignore": Command("ignore", queued=False, done="triaged with /ignore", noun="ignores"),
}


class CommandLimits:
    """Rate limits for one command: per change (``per_change`` in ``change_window`` seconds) and
    per requester (``per_user`` an hour), plus one refusal answer per requester and change."""

    def __init__(
        self,
        per_change: int = 3,
        change_window: float = 600.0,
        per_user: int = 20,
        clock: Callable[[], float] = time.monotonic,
        command: Command = COMMANDS["rescan"],
    ) -> None:
        self.command = command
        self.changes = SlidingWindow(per_change, change_window, clock)
        self.users = SlidingWindow(per_user, 3600.0, clock)
        self.answers = SlidingWindow(1, max(change_window, 3600.0), clock)
        self.shared: SharedStore | None = None  # a fleet counts together (Platform.share)

    @classmethod
    def from_settings(cls, settings: CommandSettings, command: str = "rescan") -> CommandLimits:
        if command == "ignore":
            return cls(
                settings.ignore_per_change,
                settings.rescan_change_window,
                settings.ignore_per_user_per_hour,
                command=COMMANDS["ignore"],
            )
        return cls(
            settings.rescan_per_change, settings.rescan_change_window, settings.rescan_per_user_per_hour
        )

    def refusal(self, change_key: str, user: str) -> str | None:
        """Why this command is refused now, or None (and then it is counted)."""
        if not self.changes.allows(change_key):
            wait = self.changes.retry_in(change_key)
            return (
                f"this change was {self.command.done} {self.changes.limit} times in the last "
                f"{self.changes.window / 60:.0f} minutes; try again in {wait / 60:.0f} minute(s)"
            )
        if not self.users.allows(user):
            return f"{user} asked for {self.users.limit} {self.command.noun} in the last hour"
        self.changes.record(change_key)
        self.users.record(user)
        return None

    async def admit(self, change_key: str, user: str) -> str | None:
        """:meth:`refusal`, counted for the whole fleet when it shares a store, so that several
        web processes do not each allow the limit; this process alone if the store is down."""
        if self.shared is None:
            return self.refusal(change_key, user)
        name = self.command.name
        try:
            if await self.shared.reserve(
                f"{name}:change:{change_key}", [(self.changes.limit, self.changes.window)]
            ):
                return (
                    f"this change was {self.command.done} {self.changes.limit} times in the last "
                    f"{self.changes.window / 60:.0f} minutes; try again later"
                )
            if await self.shared.reserve(f"{name}:user:{user}", [(self.users.limit, self.users.window)]):
                return f"{user} asked for {self.users.limit} {self.command.noun} in the last hour"
        except Exception as exc:
            log.warning("shared command limits unavailable (%r): counting in this process", exc)
            return self.refusal(change_key, user)
        return None

    async def answer_now(self, change_key: str, user: str) -> bool:
        """:meth:`should_answer`, for the whole fleet when it shares a store."""
        if self.shared is None:
            return self.should_answer(change_key, user)
        try:
            key = f"{self.command.name}:answer:{change_key}\0{user}"
            return not await self.shared.reserve(key, [(self.answers.limit, self.answers.window)])
        except Exception as exc:
            log.warning("shared command limits unavailable (%r): counting in this process", exc)
            return self.should_answer(change_key, user)

    def should_answer(self, change_key: str, user: str) -> bool:
        """True for the first refusal of ``user`` on ``change_key`` in the window (then counted)."""
        key = f"{change_key}\0{user}"
        if not self.answers.allows(key):
            return False
        self.answers.record(key)
        return True


async def admit(platform: Platform, request: JobRequest) -> str | None:
    """None when a command may be queued, else why not (answered to the requester, best effort).
    A trust check that cannot be made refuses: untrusted until proven otherwise."""
    try:
        refused = await platform.refusal(request)
    except Exception as exc:  # any failure to check (API down, bad credentials) refuses
        log.warning("could not check the command on %s: %r", request.key, exc)
        return f"could not be checked ({exc})"
    if refused:
        try:
            await platform.answer_refusal(request, refused)
        except Exception as exc:  # the refusal stands whether or not the answer gets through
            log.warning("could not answer the refused command on %s: %r", request.key, exc)
    return refused


@dataclass(frozen=True)
class Outcome:
    """What became of one job an event asked for: queued or skipped (``enqueued``), or refused."""

    job: JobRequest
    enqueued: Enqueued | None = None
    refused: str | None = None


async def admit_and_queue(
    platform: Platform, sink: EventSink, jobs: list[JobRequest], delivery: Callable[[int], str | None]
) -> list[Outcome]:
    """Every job of one event: commands through :func:`admit` first, then into the queue with
    ``delivery(index)`` as its delivery id, or (a command that is not queued) carried out by the
    platform at once. A redelivered event stops at its first job (the rest were queued with it
    the first time)."""
    from bot.platforms.base import DUPLICATE_DELIVERY, Enqueued

    outcomes: list[Outcome] = []
    for index, job in enumerate(jobs):
        command = COMMANDS.get(job.kind)
        if command is not None and (refused := await admit(platform, job)):
            outcomes.append(Outcome(job, refused=refused))
            continue
        if command is not None and not command.queued:
            done = await platform.run_command(job)
            outcomes.append(Outcome(job, enqueued=Enqueued(None, [], done)))
            continue
        result = await sink.enqueue(platform.name, job, delivery(index))
        outcomes.append(Outcome(job, enqueued=result))
        if result.skipped == DUPLICATE_DELIVERY:
            break
    return outcomes

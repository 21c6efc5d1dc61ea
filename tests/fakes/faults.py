"""Fault injection both fakes share: writes that are applied and then lose their answer, and
random faults (reproducible by seed). The fakes decide how a fault looks on their wire (GitHub's
JSON error bodies, Gerrit's text/plain); this only decides *which* request gets one."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class LostAnswer:
    """Replace the answer of a request that was served: ``status`` (a proxy's 502 after the
    platform did the write) or, with ``None``, drop the connection; ``hold`` delays it until set."""

    status: int | None
    hold: asyncio.Event | None = None


@dataclass
class _Planned:
    method: str
    pattern: re.Pattern[str]
    answer: LostAnswer
    remaining: int


@dataclass
class Faults:
    planned: list[_Planned] = field(default_factory=list)
    rng: random.Random | None = None
    fail_rate: float = 0.0
    lose_rate: float = 0.0
    lose_methods: frozenset[str] = WRITES
    statuses: tuple[int, ...] = (500, 502, 503, 429)
    counts: dict[str, int] = field(default_factory=lambda: {"failed": 0, "lost": 0})  # planned and random

    def lose_answer(
        self, method: str, path_regex: str, status: int | None, count: int, hold: asyncio.Event | None
    ) -> None:
        self.planned.append(_Planned(method.upper(), re.compile(path_regex), LostAnswer(status, hold), count))

    def chaos(
        self,
        fail_rate: float,
        lose_rate: float,
        seed: int,
        statuses: Iterable[int],
        lose_methods: Iterable[str],
    ) -> None:
        self.rng = random.Random(seed) if fail_rate or lose_rate else None
        self.fail_rate, self.lose_rate = fail_rate, lose_rate
        self.statuses, self.lose_methods = tuple(statuses), frozenset(lose_methods)

    def random_failure(self) -> int | None:
        """A status to answer *instead of* serving the request, or None."""
        if self.rng is None or self.rng.random() >= self.fail_rate:
            return None
        self.counts["failed"] += 1
        return self.rng.choice(self.statuses)

    def lost_answer(self, method: str, path: str) -> LostAnswer | None:
        """For a request that was served: whether (and how) its answer is lost."""
        for plan in self.planned:
            if plan.remaining > 0 and plan.method in ("*", method) and plan.pattern.search(path):
                plan.remaining -= 1
                if plan.remaining == 0:
                    self.planned.remove(plan)
                self.counts["lost"] += 1
                return plan.answer
        if self.rng is not None and method in self.lose_methods and self.rng.random() < self.lose_rate:
            self.counts["lost"] += 1
            return LostAnswer(self.rng.choice((502, None)))
        return None

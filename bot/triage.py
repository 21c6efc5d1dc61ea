"""Triage from the thread, sans I/O: the ``/ignore`` command and what an ignore does to a review.

A trusted reviewer answers a bot comment with ``/ignore <reason>`` (that change) or
``/ignore --everywhere <reason>`` (the whole repository / project). The decision is kept by
fingerprint, so it follows the finding across pushes and line moves; the review then leaves the
finding out of its comments, its verdict, its vote and its check run, and its summary lists it
under **Ignored by triage** with who and why. Who may do it is the platform's business (bot.platforms);
where it is kept is :mod:`bot.triage_store`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bot.model import Comment, Review
from bot.render import make_review

Scope = Literal["change", "repository"]
IGNORE_LINE = re.compile(r"^[ \t]*/ignore(?=\s|$)(?P<rest>[^\n]*)$", re.MULTILINE)
EVERYWHERE = "--everywhere"
IGNORE_WHERE = "`/ignore <reason>` goes in a reply on the finding's own thread (the bot's inline comment)"
REASON_MAX = 500


class CommandError(ValueError):
    """An ``/ignore`` that cannot be carried out as written; the message says how to write it."""


@dataclass(frozen=True)
class IgnoreCommand:
    everywhere: bool
    reason: str

    @property
    def scope(self) -> Scope:
        return "repository" if self.everywhere else "change"


def parse_ignore(text: str) -> IgnoreCommand | None:
    """The ``/ignore`` on a line of its own in ``text``; None when there is none.

    Raises :class:`CommandError` when the reason is missing (a reason is required: the summary
    and the audit record show it) or when it is given twice."""
    found = IGNORE_LINE.findall(text or "")
    if not found:
        return None
    if len(found) > 1:
        raise CommandError("write one `/ignore` per reply")
    words = found[0].split()
    everywhere = bool(words) and words[0] == EVERYWHERE
    reason = " ".join(words[1:] if everywhere else words)
    if not reason:
        usage = "/ignore --everywhere <reason>" if everywhere else "/ignore <reason>"
        raise CommandError(f"a reason is required: `{usage}`")
    if len(reason) > REASON_MAX:
        raise CommandError(f"the reason is over {REASON_MAX} characters")
    return IgnoreCommand(everywhere, reason)


@dataclass(frozen=True)
class Ignore:
    """One triage decision, as stored (it is also the audit record)."""

    platform: str  # "github" | "gerrit"
    scope: Scope
    key: str  # the change's job key ("github:o/r#12") or the repository's ("github:o/r")
    fingerprint: str
    who: str
    reason: str
    when: float = field(default_factory=time.time)
    title: str = ""  # what the finding was called when it was ignored (for the summary)
    comment_id: str = ""  # the reply that asked for it


@dataclass
class Triaged:
    """A review with the ignored findings taken out, and what was taken out."""

    review: Review
    ignored: list[tuple[Comment, Ignore]]

    @property
    def fingerprints(self) -> set[str]:
        return {c.fingerprint for c, _ in self.ignored}

    @property
    def section(self) -> str:
        """The summary's list of ignored findings ("" when none)."""
        return ignored_section(self.ignored) if self.ignored else ""


def _day(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d")


def ignored_section(ignored: list[tuple[Comment, Ignore]]) -> str:
    lines = ["**Ignored by triage** (not counted in the verdict):"]
    for comment, decision in sorted(ignored, key=lambda pair: (pair[0].path, pair[0].line)):
        where = "in this repository" if decision.scope == "repository" else "on this change"
        lines.append(
            f"- **{comment.title}** — {comment.path}:{comment.line}: ignored {where} by "
            f"{decision.who} on {_day(decision.when)}: {decision.reason}"
        )
    return "\n".join(lines)


def apply(review: Review, decisions: Iterable[Ignore], cap: int) -> Triaged:
    """``review`` without the findings ``decisions`` ignore: verdict, inline cap and summary are
    made again from what is left (``cap``: the repository's inline cap); the summary lists the
    ignored ones after the findings. A review with nothing ignored is returned as it is."""
    by_fingerprint: dict[str, Ignore] = {}
    for decision in decisions:
        # a change's own decision says more than the repository's
        if decision.fingerprint not in by_fingerprint or decision.scope == "change":
            by_fingerprint[decision.fingerprint] = decision
    ignored = [
        (c, by_fingerprint[c.fingerprint]) for c in review.all_comments if c.fingerprint in by_fingerprint
    ]
    if not ignored:
        return Triaged(review, [])
    kept = [c for c in review.all_comments if c.fingerprint not in by_fingerprint]
    again = make_review(kept, review.errors, cap, review.reviewed_files)
    triaged = Triaged(again, ignored)
    again.summary = f"{again.summary}\n\n{triaged.section}"
    again.timings = review.timings
    return triaged


def confirmation(command: IgnoreCommand, who: str, title: str, where: str) -> str:
    """The reply that confirms an ignore (``where``: "this pull request", "this change")."""
    scope = "every change of this repository" if command.everywhere else where
    return (
        f"Ignored by {who} for {scope}: {command.reason}\n\n"
        f"Patchwarden will not report **{title or 'this finding'}** here again; the summary of the next "
        f"review lists it under *Ignored by triage*."
    )

"""Publishing, written once for every platform: what to post (a pure decision) and how to post a
batch the platform may partly refuse. The adapters only read their threads into :class:`Thread`
and write the :class:`Plan` out in their platform's terms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.model import Comment, Review
from bot.platforms.base import Rejected

T = TypeVar("T")


@dataclass(frozen=True)
class Thread:
    """A finding the bot commented on earlier on this change, as the platform lists it."""

    fingerprint: str
    id: Any  # the platform's id of the comment, to reply to
    path: str
    line: int = 1
    revision: Any = None  # the patchset / head it was posted on; None: not known
    fixed: bool = False  # the bot's last word on it is "fixed" (a later "it is back" reopens it)


@dataclass
class Plan:
    """What one publish does."""

    new: list[Comment] = field(default_factory=list)  # post inline
    outside: list[Comment] = field(default_factory=list)  # cannot be inline here: named in the summary
    repeated: list[Comment] = field(default_factory=list)  # on an earlier revision already: not repeated
    fixed: list[Thread] = field(default_factory=list)  # the finding is gone: reply "fixed" on the thread
    reopened: list[Thread] = field(default_factory=list)  # answered "fixed", and the finding is back

    @property
    def nothing_new(self) -> bool:
        return not self.new and not self.outside


def plan(
    review: Review,
    threads: Iterable[Thread],
    *,
    revision: Any = None,
    inline_outside_diff: bool = False,
    replyable_paths: Collection[str] | None = None,
    ignored: Collection[str] = (),
) -> Plan:
    """Decide, from a review and the bot's threads already on the change, what to post.

    * A comment whose fingerprint has a thread is not posted again (fingerprints survive line
      moves). It counts as *repeated* unless its thread was posted on ``revision`` itself (an
      interrupted try of this very publish); with ``revision=None`` every thread is earlier.
    * ``inline_outside_diff``: the platform takes comments on any line of a file (Gerrit); else
      (GitHub) a comment outside the diff's hunks is listed in the summary (``outside``).
    * A thread whose finding the review no longer has (inline or overflow) and that is not yet
      marked fixed gets a "fixed" reply, if its file can take one (``replyable_paths``; None: any).
    * A thread marked fixed whose finding is back is *reopened* (a reply on the old thread, never
      a new comment). ``ignored``: fingerprints triaged away: neither fixed nor reopened.
    """
    posted: dict[str, Thread] = {}
    for thread in threads:
        posted.setdefault(thread.fingerprint, thread)
    result = Plan()
    for comment in review.comments:
        thread = posted.get(comment.fingerprint)
        if not inline_outside_diff and not comment.in_hunk:
            result.outside.append(comment)
        elif thread is None:
            result.new.append(comment)
        if thread is not None and (revision is None or thread.revision != revision):
            result.repeated.append(comment)
    current = {c.fingerprint for c in review.all_comments}

    def replyable(thread: Thread) -> bool:
        return thread.fingerprint not in ignored and (
            replyable_paths is None or thread.path in replyable_paths
        )

    result.fixed = [
        thread
        for fingerprint, thread in posted.items()
        if fingerprint not in current and not thread.fixed and replyable(thread)
    ]
    result.reopened = [
        thread
        for fingerprint, thread in posted.items()
        if fingerprint in current and thread.fixed and replyable(thread)
    ]
    return result


def summary_message(
    review: Review,
    result: Plan,
    refused: Sequence[Comment],
    *,
    platform: str,
    revision_word: str,
    footer: str,
) -> str:
    """The summary as posted: the review's summary, what was not repeated, what could not be
    inline and what the platform refused, then ``footer`` (the run marker) as the last line."""
    parts = [review.summary]
    if result.repeated:
        parts.append(
            f"{len(result.repeated)} finding(s) already commented on an earlier {revision_word} are not repeated."
        )
    for heading, items in (
        (f"Outside the diff (not commentable inline on {platform})", result.outside),
        (f"{platform} refused these inline comments", refused),
    ):
        if items:
            parts.append(
                f"**{heading}:**\n" + "\n".join(f"- **{c.title}** — {c.path}:{c.line}" for c in items)
            )
    parts.append(footer)
    return "\n\n".join(parts)


async def post_in_batches(items: Sequence[T], post: Callable[[Sequence[T]], Awaitable[None]]) -> list[T]:
    """Post ``items`` in one call; if the platform rejects the batch, bisect so that one bad item
    never loses the others. Returns the items that were refused even alone."""
    if not items:
        return []
    try:
        await post(items)
        return []
    except Rejected:
        if len(items) == 1:
            return list(items)
    mid = len(items) // 2
    return await post_in_batches(items[:mid], post) + await post_in_batches(items[mid:], post)

"""Publishing helpers both adapters share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from bot.platforms.base import Rejected

T = TypeVar("T")


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

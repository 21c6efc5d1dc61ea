"""One retry policy for calls to the platforms (tenacity): exponential backoff with jitter, at
least as long as the server's ``Retry-After``.

Reads are retried here. Writes are not: a write whose answer was lost (a 502 after the server
applied it, a reset connection) may have landed, so the caller first looks for what it wrote
(a marker in the review) and only then writes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential, wait_random


class Retryable(Exception):
    """A failure worth another try; ``retry_after`` is the server's hint, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (clients hand plain dicts as well)."""
    name = name.lower()
    return next((value for key, value in headers.items() if key.lower() == name), None)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = header(headers, "Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def policy(
    attempts: int,
    backoff: float,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Retryable,
    max_wait: float = 60.0,
) -> AsyncRetrying:
    """``attempts`` tries of whatever raises ``retry_on``; the last failure is re-raised."""
    exponential = wait_exponential(multiplier=backoff, max=max_wait) + wait_random(0, backoff)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None) or 0.0
        return min(max_wait, max(exponential(state), hint))

    return AsyncRetrying(
        stop=stop_after_attempt(attempts), wait=wait, retry=retry_if_exception_type(retry_on), reraise=True
    )

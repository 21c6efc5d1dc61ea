"""Webhook intake helpers every platform's routes share: read a bounded body, refuse a delivery."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from bot import metrics
from bot.platforms.base import WebhookError

log = logging.getLogger(__name__)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, content-length or chunked: 413 above ``limit`` bytes, 400 when it breaks off.

    ``request.content.read(n)`` returns what has arrived so far, not ``n`` bytes: read to EOF."""
    if request.content_length is not None and request.content_length > limit:
        raise WebhookError(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                raise WebhookError(413, f"body over {limit} bytes")
            chunks.append(chunk)
    except (BadHttpMessage, ConnectionError, asyncio.IncompleteReadError) as exc:
        raise WebhookError(400, f"body could not be read: {type(exc).__name__}") from None
    return b"".join(chunks)


def rejected(platform: str, event: str | None, exc: WebhookError) -> web.Response:
    """Count and answer a refused delivery: ``{"error": "<one line>"}`` with its 4xx status.

    ``event`` is None until the sender is authenticated: only then may it name a label."""
    log.warning(
        "%s webhook %s rejected (%d): %s",
        platform,
        metrics.event_label(platform, event),
        exc.status,
        exc.reason,
    )
    metrics.WEBHOOKS.labels(platform, event, str(exc.status)).inc()
    return web.json_response({"error": exc.reason}, status=exc.status)


def not_ready() -> web.Response:
    """A delivery that arrives before the service has started its platforms."""
    return web.json_response({"error": "the service is starting"}, status=503)

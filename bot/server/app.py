"""The aiohttp application: webhook endpoints, health, metrics; owns the queue and workers.

Requests only validate and persist: a webhook is answered 202 as soon as its job is in the
durable queue. Scans run in the workers (bot.server.worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from bot.config import ConfigError, Settings
from bot.pipeline import Engine
from bot.platforms.github_events import (
    WebhookError,
    decide,
    decode_webhook,
    one_line,
    signature_header,
    verify_signature,
)
from bot.server import metrics
from bot.server.commands import admit
from bot.server.platform import Platform
from bot.server.queue import DUPLICATE_DELIVERY, Enqueued, JobQueue, JobRequest
from bot.server.worker import Workers

log = logging.getLogger(__name__)


@dataclass
class Service:
    settings: Settings
    queue: JobQueue
    engine: Engine
    platforms: dict[str, Platform]
    workers: Workers
    background: list[asyncio.Task] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)

    def warn_once(self, key: str, message: str) -> None:
        """Log ``message`` as a warning the first time ``key`` is seen by this service."""
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s", message)

    async def enqueue(self, platform: str, request: JobRequest, delivery_id: str | None = None) -> Enqueued:
        """Persist a job; cancel a running scan it supersedes."""
        result = await self.queue.enqueue(platform, request, delivery_id)
        if result.superseded:
            self.workers.cancel_running(request.key, result.superseded)
        return result


SERVICE = web.AppKey("service", Service)


def github_enabled(settings: Settings) -> bool:
    gh = settings.github
    return bool(gh.token or gh.app_id or gh.webhook_secret)


def gerrit_enabled(settings: Settings) -> bool:
    return bool(settings.gerrit.url)


def check_startup(settings: Settings) -> None:
    """Refuse to start on a configuration that cannot work, saying what to set."""
    if not github_enabled(settings) and not gerrit_enabled(settings):
        raise ConfigError(
            "nothing to serve: configure GitHub (PATCHWARDEN_GITHUB_WEBHOOK_SECRET and PATCHWARDEN_GITHUB_TOKEN "
            "or PATCHWARDEN_GITHUB_APP_ID + PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE) or Gerrit (PATCHWARDEN_GERRIT_URL)"
        )
    gh = settings.github
    if github_enabled(settings):
        if not gh.webhook_secret:
            raise ConfigError(
                "PATCHWARDEN_GITHUB_WEBHOOK_SECRET (github.webhook_secret) is required: unsigned webhooks are refused"
            )
        if not gh.token and not (gh.app_id and gh.private_key_file):
            raise ConfigError(
                "GitHub credentials missing: set PATCHWARDEN_GITHUB_TOKEN, or PATCHWARDEN_GITHUB_APP_ID "
                "and PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE"
            )
        if gh.private_key_file and not gh.private_key_file.is_file():
            raise ConfigError(f"PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE: {gh.private_key_file} does not exist")
    if gerrit_enabled(settings):
        from bot.platforms.gerrit import check_gerrit_settings

        check_gerrit_settings(settings.gerrit)


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


async def github_webhook(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    gh = service.settings.github
    if "github" not in service.platforms or not gh.webhook_secret:
        return web.json_response({"error": "GitHub is not configured on this server"}, status=404)
    verified: str | None = None  # the event name, once the signature checks out
    try:
        signature = signature_header(request.headers)  # malformed or missing: 401 before reading on
        body = await read_body(request, service.settings.server.max_body_bytes)
        verify_signature(signature, body, gh.webhook_secret)
        verified = request.headers.get("X-GitHub-Event")
        event = decode_webhook(request.headers, body)
        decision = await decide(event, gh)
    except WebhookError as exc:
        return rejected("github", verified, exc)
    if not decision.jobs:
        reason = one_line(str(decision.ignored))
        log.info("github %s %s ignored: %s", event.event, event.delivery_id, reason)
        metrics.WEBHOOKS.labels("github", event.event, "ignored").inc()
        return web.json_response({"status": "ignored", "reason": reason})
    queued: list[int] = []
    skipped: list[str | None] = []
    for index, job in enumerate(decision.jobs):
        if job.kind == "rescan" and (refused := await admit(service.platforms["github"], job)):
            log.info("github %s %s: /rescan refused: %s", event.event, event.delivery_id, refused)
            skipped.append(f"refused: {refused}")
            continue
        delivery = f"github:{event.delivery_id}" + (f":{index}" if index else "")
        result = await service.enqueue("github", job, delivery)
        if result.skipped == DUPLICATE_DELIVERY:
            metrics.WEBHOOKS.labels("github", event.event, "duplicate").inc()
            return web.json_response({"status": "duplicate", "delivery": event.delivery_id})
        if result.job_id is None:
            log.info("github %s %s: %s: %s", event.event, event.delivery_id, job.key, result.skipped)
            skipped.append(result.skipped)
        else:
            queued.append(result.job_id)
    if not queued:
        metrics.WEBHOOKS.labels("github", event.event, "ignored").inc()
        return web.json_response({"status": "ignored", "reason": "; ".join(map(str, skipped))})
    metrics.WEBHOOKS.labels("github", event.event, "queued").inc()
    return web.json_response({"status": "queued", "jobs": queued}, status=202)


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    counts = await service.queue.counts()
    problems = [
        problem
        for platform in service.platforms.values()
        if (health := getattr(platform, "health", None)) is not None and (problem := health())
    ]
    body = {
        "status": "unhealthy" if problems else "ok",
        "queue": counts,
        "platforms": sorted(service.platforms),
    }
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=503 if problems else 200)


async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


PlatformFactory = Callable[[Settings, Engine], Awaitable[Platform]]


async def build_platforms(settings: Settings, engine: Engine) -> dict[str, Platform]:
    from bot.server.commands import CommandLimits

    platforms: dict[str, Platform] = {}
    if github_enabled(settings):
        from bot.platforms.github import GitHubPlatform

        platforms["github"] = GitHubPlatform(
            settings.github, CommandLimits.from_settings(settings.commands), settings.engine.max_file_bytes
        )
    if gerrit_enabled(settings):
        from bot.platforms.gerrit import GerritPlatform

        platforms["gerrit"] = GerritPlatform(
            settings.gerrit, CommandLimits.from_settings(settings.commands), settings.engine.max_file_bytes
        )
    return platforms


def create_app(settings: Settings, engine: Engine | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.server.max_body_bytes + 1024)
    app.router.add_post("/webhooks/github", github_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    if gerrit_enabled(settings):
        from bot.platforms.gerrit import gerrit_webhook

        app.router.add_post("/webhooks/gerrit", gerrit_webhook)

    async def lifecycle(app: web.Application):
        queue = JobQueue(settings.server.data_dir / "queue.sqlite3", settings.server.retention_days)
        recovered = await queue.recover()
        if recovered:
            log.info("re-queued %d job(s) interrupted by a restart", recovered)
        eng = engine or Engine.from_settings(settings.engine)
        platforms = await build_platforms(settings, eng)
        workers = Workers(
            queue,
            eng,
            settings.review,
            platforms,
            concurrency=settings.server.workers,
            max_attempts=settings.server.max_attempts,
            retry_base_delay=settings.server.retry_base_delay,
        )
        service = Service(settings, queue, eng, platforms, workers)
        app[SERVICE] = service
        workers.start()
        service.background.append(asyncio.create_task(queue.prune_periodically(), name="queue-prune"))
        for platform in platforms.values():
            starter = getattr(platform, "start", None)
            if starter is not None:
                service.background.append(
                    asyncio.create_task(starter(service), name=f"{platform.name}-events")
                )
        log.info("patchwarden serving %s; data in %s", ", ".join(sorted(platforms)), settings.server.data_dir)
        yield
        for task in service.background:
            task.cancel()
        for task in service.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await workers.stop()
        for platform in platforms.values():
            await platform.close()
        queue.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    check_startup(settings)
    host = host or settings.server.host
    port = port or settings.server.port
    log.info("listening on http://%s:%d", host, port)
    web.run_app(create_app(settings), host=host, port=port, print=None, access_log=None)
    return 0

"""The aiohttp application: health, metrics and every platform's routes; owns the queue and workers.

Requests only validate and persist: a webhook is answered 202 as soon as its job is in the
durable queue. Scans run in the workers (bot.server.worker). Platforms come from
bot.platforms.registry; this module names none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import web

from bot import metrics
from bot.config import Settings
from bot.pipeline import Engine
from bot.platforms import registry
from bot.platforms.base import Enqueued, JobRequest, Platform
from bot.server.queue import JobQueue
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

    async def get_state(self, key: str) -> str | None:
        return await self.queue.get_state(key)

    async def set_state(self, key: str, value: str) -> None:
        await self.queue.set_state(key, value)


SERVICE = web.AppKey("service", Service)


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    counts = await service.queue.counts()
    problems = [problem for platform in service.platforms.values() if (problem := platform.health())]
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


def create_app(settings: Settings, engine: Engine | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.server.max_body_bytes + 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    platforms = registry.build_platforms(settings)
    for spec in registry.PLATFORMS:
        if spec.name not in platforms:
            for path in spec.paths:
                app.router.add_post(path, _not_configured(spec.name))
    for platform in platforms.values():
        for route in platform.routes():
            app.router.add_route(route.method, route.path, route.handler)

    async def lifecycle(app: web.Application):
        queue = JobQueue(settings.server.data_dir / "queue.sqlite3", settings.server.retention_days)
        recovered = await queue.recover()
        if recovered:
            log.info("re-queued %d job(s) interrupted by a restart", recovered)
        # Findings per file by content: a rescan or an unchanged file costs no analyzer run.
        eng = engine or Engine.from_settings(
            settings.engine, cache=settings.server.data_dir / "cache.sqlite3", warm=True
        )
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
            for number, task in enumerate(platform.start(service)):
                service.background.append(asyncio.create_task(task, name=f"{platform.name}-{number}"))
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
        if engine is None:
            await eng.close()
        queue.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def _not_configured(name: str):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": f"{name} is not configured on this server"}, status=404)

    return handler


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    registry.check_startup(settings)
    host = host or settings.server.host
    port = port or settings.server.port
    log.info("listening on http://%s:%d", host, port)
    web.run_app(create_app(settings), host=host, port=port, print=None, access_log=None)
    return 0

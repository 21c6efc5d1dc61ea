"""The aiohttp application: health, metrics and every platform's routes; owns the queue and workers.

Requests only validate and persist: a webhook is answered 202 as soon as its job is in the
durable queue. Scans run in the workers (bot.server.worker). Platforms come from
bot.platforms.registry; this module names none of them.

Roles (``serve --role``): ``all`` is one process doing everything (the embedded SQLite queue, or
Redis); with ``server.queue_url`` set, ``web`` processes answer webhooks and read the Gerrit
stream (one of them at a time, under a lease) and only enqueue, and ``worker`` processes run
reviews and serve only ``/healthz`` and ``/metrics``. No process keeps state of its own: the
queue, the pacing of GitHub writes, installation tokens and the result cache live in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import web

from bot import metrics
from bot.config import ConfigError, Settings
from bot.pipeline import Engine
from bot.platforms import registry
from bot.platforms.base import Enqueued, JobRequest, Platform, SharedStore
from bot.server.queue import JobQueue, QueueUnavailable
from bot.server.worker import Workers, update_gauges

ROLES = ("all", "web", "worker")

log = logging.getLogger(__name__)


@dataclass
class Service:
    settings: Settings
    queue: JobQueue
    engine: Engine | None  # None in a web process: it reviews nothing
    platforms: dict[str, Platform]
    workers: Workers | None  # None in a web process
    background: list[asyncio.Task] = field(default_factory=list)
    role: str = "all"
    shared: SharedStore | None = None
    warned: set[str] = field(default_factory=set)

    def warn_once(self, key: str, message: str) -> None:
        """Log ``message`` as a warning the first time ``key`` is seen by this service."""
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s", message)

    async def enqueue(self, platform: str, request: JobRequest, delivery_id: str | None = None) -> Enqueued:
        """Persist a job; cancel a running scan it supersedes."""
        result = await self.queue.enqueue(platform, request, delivery_id)
        if result.superseded and self.workers is not None:  # on other hosts: through the queue
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
        "role": service.role,
        "queue": counts,
        "platforms": sorted(service.platforms),
    }
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=503 if problems else 200)


async def metrics_endpoint(request: web.Request) -> web.Response:
    service = request.app.get(SERVICE)
    if service is not None:
        await update_gauges(service.queue)  # the queue as it is now (the fleet's, on Redis)
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


@web.middleware
async def queue_errors(request: web.Request, handler) -> web.StreamResponse:
    """The queue's store is down (Redis): 503 with Retry-After, so senders deliver again later
    and nothing acknowledged is lost; never a 500."""
    try:
        return await handler(request)
    except QueueUnavailable as exc:
        log.error("%s %s: %s", request.method, request.path, exc)
        return web.json_response(
            {"error": "the job queue is unavailable; deliver again later"},
            status=503,
            headers={"Retry-After": "30"},
        )


def check_role(settings: Settings, role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if role != "all" and not settings.server.queue_url:
        raise ConfigError(
            f"--role {role} needs a queue the processes share: set PATCHWARDEN_QUEUE_URL "
            "(server.queue_url, redis://HOST:PORT/DB); the embedded queue serves one process (--role all)"
        )


def open_queue(settings: Settings) -> JobQueue:
    """The Redis queue with ``server.queue_url``, else the embedded SQLite one."""
    s = settings.server
    if s.queue_url:
        from bot.server.redis_queue import RedisJobQueue

        return RedisJobQueue(s.queue_url, s.retention_days, s.job_lease_seconds)  # type: ignore[return-value]
    return JobQueue(s.data_dir / "queue.sqlite3", s.retention_days)


def open_engine(settings: Settings, queue: JobQueue) -> Engine:
    """Findings per file by content: a rescan or an unchanged file costs no analyzer run. In
    Redis with a shared queue, so any worker reuses what another computed."""
    if settings.server.queue_url:
        from bot.server.redis_cache import RedisResultCache

        cache = RedisResultCache(settings.server.queue_url)
        return Engine.from_settings(settings.engine, cache=cache, warm=True)
    return Engine.from_settings(settings.engine, cache=settings.server.data_dir / "cache.sqlite3", warm=True)


def shared_store(settings: Settings, queue: JobQueue) -> SharedStore | None:
    if not settings.server.queue_url:
        return None
    from bot.server.redis_store import RedisShared

    return RedisShared(queue.redis, queue.prefix, settings.server.stream_lease_seconds)  # type: ignore[attr-defined]


def create_app(settings: Settings, engine: Engine | None = None, role: str = "all") -> web.Application:
    check_role(settings, role)
    app = web.Application(client_max_size=settings.server.max_body_bytes + 1024, middlewares=[queue_errors])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    platforms = registry.build_platforms(settings)
    if role != "worker":  # a worker answers no webhook: the web processes do
        for spec in registry.PLATFORMS:
            if spec.name not in platforms:
                for path in spec.paths:
                    app.router.add_post(path, _not_configured(spec.name))
        for platform in platforms.values():
            for route in platform.routes():
                app.router.add_route(route.method, route.path, route.handler)

    async def lifecycle(app: web.Application):
        queue = open_queue(settings)
        try:
            recovered = await queue.recover()
        except QueueUnavailable as exc:
            raise ConfigError(str(exc)) from exc
        if recovered:
            log.info("re-queued %d job(s) interrupted by a restart", recovered)
        shared = shared_store(settings, queue)
        eng = workers = None
        if role != "web":
            eng = engine or open_engine(settings, queue)
            workers = Workers(
                queue,
                eng,
                settings.review,
                platforms,
                concurrency=settings.server.workers,
                max_attempts=settings.server.max_attempts,
                retry_base_delay=settings.server.retry_base_delay,
            )
            if settings.server.queue_url:  # scans running here, superseded through another process
                queue.on_cancel = workers.cancel_running  # type: ignore[attr-defined]
        service = Service(settings, queue, eng, platforms, workers, role=role, shared=shared)
        app[SERVICE] = service
        queue.start()
        if workers is not None:
            workers.start()
        service.background.append(asyncio.create_task(queue.prune_periodically(), name="queue-prune"))
        for platform in platforms.values():
            platform.share(shared)
            if role == "worker":  # event sources (webhooks, the Gerrit stream) live in web processes
                continue
            for number, task in enumerate(platform.start(service)):
                service.background.append(asyncio.create_task(task, name=f"{platform.name}-{number}"))
        log.info(
            "patchwarden serving %s as %s; queue %s",
            ", ".join(sorted(platforms)),
            role,
            "in Redis" if settings.server.queue_url else f"in {settings.server.data_dir}",
        )
        yield
        for task in service.background:
            task.cancel()
        for task in service.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if workers is not None:
            await workers.stop()
        for platform in platforms.values():
            await platform.close()
        if engine is None and eng is not None:
            await eng.close()
        await queue.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


def _not_configured(name: str):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": f"{name} is not configured on this server"}, status=404)

    return handler


def serve(settings: Settings, host: str | None = None, port: int | None = None, role: str = "all") -> int:
    registry.check_startup(settings)
    check_role(settings, role)
    host = host or settings.server.host
    port = port or settings.server.port
    log.info("listening on http://%s:%d (%s)", host, port, role)
    web.run_app(create_app(settings, role=role), host=host, port=port, print=None, access_log=None)
    return 0

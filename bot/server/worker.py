"""Workers: take jobs from the queue and run the one review flow every platform shares.

prepare (platform) -> repository config -> opt-out -> load change (platform) -> engine.review
-> publish (platform). A newer job with the same key cancels a running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot import metrics
from bot.config import ConfigError, RepoConfig, parse_repo_config
from bot.pipeline import Engine
from bot.platforms.base import Job, PermanentError, Platform, Skip, Target
from bot.server.queue import JobQueue, QueueUnavailable, job_state_key

log = logging.getLogger(__name__)


class Workers:
    def __init__(
        self,
        queue: JobQueue,
        engine: Engine,
        defaults: RepoConfig,
        platforms: dict[str, Platform],
        concurrency: int = 2,
        max_attempts: int = 5,
        retry_base_delay: float = 5.0,
        sweep_interval: float = 5.0,
    ) -> None:
        self.queue = queue
        self.engine = engine
        self.defaults = defaults
        self.platforms = platforms
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.retry_base_delay = retry_base_delay
        self.sweep_interval = sweep_interval
        self._running: dict[str, tuple[int, asyncio.Task]] = {}
        self._superseded: set[int] = set()  # running jobs cancelled because a newer one came
        self._lost: set[int] = set()  # running jobs another worker took back (Redis: lease lost)
        self._reportable: dict[int, Target] = {}  # jobs past the opt-out check: failures are shown
        self._loops: list[asyncio.Task] = []

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._loop(i), name=f"worker-{i}") for i in range(self.concurrency)
        ]
        self._loops.append(asyncio.create_task(self._sweep_unclosed(), name="worker-sweep"))

    async def stop(self, grace: float = 20.0) -> None:
        """Cancel the loops and the running scans, and wait (bounded) for the scans to close what
        they opened (a check run, ...) before the caller closes the HTTP sessions and the queue."""
        running = [task for _, task in self._running.values()]
        for task in [*self._loops, *running]:
            task.cancel()
        if self._loops or running:
            await asyncio.wait([*self._loops, *running], timeout=grace)

    def cancel_running(self, key: str, superseded_ids: list[int], lost: bool = False) -> None:
        """Called after an enqueue superseded ``superseded_ids``: stop the scan of the old head.
        With ``lost``, another worker took the job back (this one stalled past its lease): stop
        without touching what the scan opened, which the other worker carries on."""
        running = self._running.get(key)
        if running and running[0] in superseded_ids:
            if lost:
                log.warning("job %s (%s) taken back by another worker; stopping here", running[0], key)
                self._lost.add(running[0])
            else:
                log.info("job %s (%s) superseded by a newer event; cancelling", running[0], key)
                self._superseded.add(running[0])
            running[1].cancel()

    async def _loop(self, number: int) -> None:
        while True:
            self.queue.wakeup.clear()  # before claiming, so an enqueue during the claim is not missed
            try:
                job = await self.queue.claim()
            except QueueUnavailable as exc:  # Redis down: nothing is lost, the jobs wait there
                log.warning("worker %d: %s; trying again", number, exc)
                await asyncio.sleep(1.0)
                continue
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queue.wakeup.wait(), timeout=1.0)
                continue
            task = asyncio.create_task(self.process(job), name=f"job-{job.id}")
            self._running[job.key] = (job.id, task)
            try:
                await asyncio.shield(task)
                await update_gauges(self.queue)
            except asyncio.CancelledError:
                if not task.cancelled():  # the worker itself is stopping
                    raise
                if job.id not in self._lost:  # a lost job is another worker's to finish
                    with contextlib.suppress(QueueUnavailable):  # else its lease runs out: run again
                        await self.queue.supersede(job.id)
                    metrics.JOBS.labels(job.platform, "superseded").inc()
            except QueueUnavailable as exc:
                # The outcome could not be recorded: the job's lease runs out and it runs again,
                # and its run marker makes a publish already made a no-op.
                log.warning("job %s (%s): outcome not recorded: %s", job.id, job.key, exc)
            finally:
                self._superseded.discard(job.id)
                self._lost.discard(job.id)
                if self._running.get(job.key, (None,))[0] == job.id:
                    del self._running[job.key]

    async def process(self, job: Job) -> None:
        try:
            await self._process(job)
        finally:
            self._reportable.pop(job.id, None)

    async def _process(self, job: Job) -> None:
        platform = self.platforms.get(job.platform)
        if platform is None:
            await self.queue.finish(job.id, "failed", f"platform {job.platform} is not configured")
            return
        started = time.monotonic()
        try:
            await self.review_job(platform, job)
        except Skip as why:
            log.info("job %s (%s) skipped: %s", job.id, job.key, why)
            token = await self.queue.get_state(job_state_key(job.id))  # an earlier attempt's
            if token is not None:
                await self._close_begun(platform, job, token, f"Not reviewed: {why}.")
            await self.queue.finish(job.id, "done", f"skipped: {why}")
            metrics.JOBS.labels(job.platform, "skipped").inc()
            return
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            log.error("job %s (%s) failed: %s", job.id, job.key, exc)
            await self._fail(platform, job, str(exc))
            return
        except Exception as exc:
            if job.attempts >= self.max_attempts:
                log.exception("job %s (%s) failed after %d attempts", job.id, job.key, job.attempts)
                await self._fail(platform, job, f"{exc or repr(exc)} (after {job.attempts} attempts)")
            else:
                delay = self.retry_base_delay * 2 ** (job.attempts - 1)
                log.warning(
                    "job %s (%s) attempt %d failed (%r); retrying in %.0f s",
                    job.id,
                    job.key,
                    job.attempts,
                    exc,
                    delay,
                )
                await self.queue.retry_later(job.id, delay, repr(exc))
                metrics.JOBS.labels(job.platform, "retried").inc()
            return
        await self.queue.finish(job.id, "done")
        metrics.JOBS.labels(job.platform, "reviewed").inc()
        metrics.REVIEW_SECONDS.labels(job.platform).observe(time.monotonic() - started)

    async def _fail(self, platform: Platform, job: Job, reason: str) -> None:
        """The job ends for good: tell the author on the change, unless the failure came before
        the repository's opt-out could be read (then nothing may be posted), and only then record
        it, so a job marked failed has said so (a kill in between repeats the job, not the note:
        report_failure looks for its marker first)."""
        target = self._reportable.pop(job.id, None)
        if target is None:
            log.warning(
                "job %s (%s) failed before its configuration was read: nothing posted", job.id, job.key
            )
        else:
            try:
                await asyncio.wait_for(
                    platform.report_failure(target, reason.splitlines()[0][:300]), timeout=60
                )
            except Exception as exc:
                log.error("could not report the failure of job %s on %s: %r", job.id, target.key, exc)
        await self.queue.finish(job.id, "failed", reason)
        metrics.JOBS.labels(job.platform, "failed").inc()

    async def _sweep_unclosed(self) -> None:
        """Close what interrupted attempts opened on jobs that will not run again: a scan killed
        mid-way (its check run ``in_progress``) whose job a newer push superseded while it
        waited for the restart. Every ``sweep_interval`` seconds, and at once on start-up."""
        while True:
            try:
                for job, token in await self.queue.take_unclosed():
                    if platform := self.platforms.get(job.platform):
                        await self._close_begun(platform, job, token, "Superseded by a newer revision.")
            except QueueUnavailable as exc:
                log.warning("could not look for unclosed scans: %s", exc)
            await asyncio.sleep(self.sweep_interval)

    @staticmethod
    async def _close_begun(platform: Platform, job: Job, token: str, reason: str) -> None:
        """Best effort and bounded, like ``_abandon``."""
        try:
            await asyncio.wait_for(platform.close_begun(job, token, reason), timeout=15)
            log.info("job %s (%s): closed what an earlier attempt opened (%s)", job.id, job.key, reason)
        except Exception as exc:
            log.warning("could not close what job %s (%s) opened: %r", job.id, job.key, exc)

    @staticmethod
    async def _abandon(platform: Platform, target: Target, reason: str, cancelled: bool = False) -> None:
        """Best effort and bounded: the job's own outcome (retry, failure, cancel) must stand."""
        try:
            await asyncio.wait_for(platform.abandon(target, reason, cancelled), timeout=15)
        except Exception as exc:
            log.warning("could not close the scan of %s: %r", target.key, exc)

    async def review_job(self, platform: Platform, job: Job) -> None:
        target = await platform.prepare(job)
        target.job_id, target.attempt = job.id, job.attempts
        config_errors: list[str] = []
        try:
            config = parse_repo_config(target.config_text, self.defaults, target.config_source)
        except ConfigError as exc:
            config_errors.append(f"{exc} — reviewed with the default configuration")
            config = self.defaults
        if not config.enabled:
            raise Skip(f"{target.config_source} on the base branch sets enabled: false")
        self._reportable[job.id] = target
        begun_key = job_state_key(job.id)
        target.resume = await self.queue.get_state(begun_key)
        token = await platform.begin(target)
        if token is not None and token != target.resume:
            await self.queue.set_state(begun_key, token)
        try:
            change = await platform.load_change(target, config, self.engine.wants)
            review = await self.engine.review(change, config, config_errors)
            if why := await self.queue.cancelled(job.id):  # superseded elsewhere, or lease lost
                (self._lost if why == "lost" else self._superseded).add(job.id)
                raise asyncio.CancelledError
            await platform.publish(target, change, review, config)
        except asyncio.CancelledError:
            if job.id in self._lost:  # the worker holding the job now continues what was begun
                raise
            superseded = job.id in self._superseded
            reason = (
                "superseded by a newer revision"
                if superseded
                else "the service stopped; it resumes on restart"
            )
            await self._abandon(platform, target, reason, cancelled=True)
            raise
        except Exception as exc:
            await self._abandon(platform, target, str(exc) or repr(exc))
            raise
        log.info(
            "job %s (%s): %d comments, %d errors, analyzers %s",
            job.id, target.key, len(review.all_comments), len(review.errors), review.timings,
        )  # fmt: skip


async def update_gauges(queue: JobQueue) -> None:
    """Queue depth by state and the age of the oldest pending job (the whole fleet's, on Redis)."""
    counts = await queue.counts()
    for state in ("pending", "running", "done", "failed", "superseded"):
        metrics.QUEUE.labels(state).set(counts.get(state, 0))
    metrics.QUEUE_AGE.set(await queue.oldest_pending_age())

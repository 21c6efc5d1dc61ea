"""What the Redis queue adds to the semantics tests/test_queue.py runs on both backends: several
processes (here: several queue instances, each its own connection pool, as processes are) on one
real redis-server — cancellation of a scan running elsewhere, leases, retention."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.server.queue import ALREADY_REVIEWED, DUPLICATE_DELIVERY, MIN_DELIVERY_RETENTION, JobRequest
from bot.server.redis_queue import RedisJobQueue
from tests.redis_server import fresh_prefix

DAY = 86400.0


@pytest.fixture
async def fleet(redis_url):
    """``fleet(n)``: n queue instances on the same records, as n processes would open them."""
    prefix = fresh_prefix()
    opened: list[RedisJobQueue] = []

    def make(n: int = 2, lease: float = 0.5) -> list[RedisJobQueue]:
        queues = [RedisJobQueue(redis_url, lease_seconds=lease, prefix=prefix) for _ in range(n)]
        opened.extend(queues)
        return queues

    yield make
    for q in opened:
        await q.aclose()


async def test_a_newer_job_enqueued_elsewhere_cancels_the_scan_running_here(fleet):
    worker, web = fleet()
    cancelled: list[tuple[str, list[int], bool]] = []
    worker.on_cancel = lambda key, ids, lost: cancelled.append((key, ids, lost))
    worker.start()  # lease renewal and notifications
    await asyncio.sleep(0.1)  # subscribed
    await web.enqueue("github", JobRequest("review", "github:o/r#1", {"revision": "a"}, True))
    running = await worker.claim()
    assert running is not None and await worker.cancelled(running.id) is None
    newer = await web.enqueue("github", JobRequest("review", "github:o/r#1", {"revision": "b"}, True))
    assert newer.superseded == [running.id]
    for _ in range(50):  # told through the notification at once, else by the next renewal (1 s)
        if cancelled:
            break
        await asyncio.sleep(0.05)
    assert cancelled == [("github:o/r#1", [running.id], False)]
    assert await worker.cancelled(running.id) == "superseded"  # asked again before publishing
    await worker.supersede(running.id)
    assert {j["id"]: j["state"] for j in await web.jobs()} == {
        running.id: "superseded",
        newer.job_id: "pending",
    }
    # A job superseded while it ran is not retried with its old head.
    assert (await worker.claim()).id == newer.job_id


async def test_a_worker_that_lost_its_lease_cannot_finish_a_job_another_took_back(fleet):
    paused, other = fleet(lease=0.3)
    await other.enqueue("github", JobRequest("review", "k", {"revision": "a"}))
    job = await paused.claim()  # and then the process stalls: no renewal
    await asyncio.sleep(0.4)
    again = await other.claim()
    assert again is not None and (again.id, again.attempts) == (job.id, 2)
    assert await paused.heartbeat() == [(job.id, True)]  # told to stop: lost, not superseded
    assert await paused.cancelled(job.id) == "lost"
    await paused.finish(job.id, "failed", "late")  # refused: not its claim any more
    await paused.supersede(job.id)  # refused too: the job is the other worker's
    assert [j["state"] for j in await other.jobs()] == ["running"]
    await other.finish(again.id, "done")
    assert [j["state"] for j in await other.jobs()] == ["done"]


async def test_a_renewed_lease_keeps_a_long_scan_with_its_worker(fleet):
    worker, other = fleet(lease=1.5)
    await other.enqueue("github", JobRequest("review", "k", {}))
    job = await worker.claim()
    for _ in range(10):  # 2.5 s, more than the lease, renewed all along
        assert await worker.heartbeat() == []
        await asyncio.sleep(0.25)
    assert await other.claim() is None
    await worker.finish(job.id)
    assert await other.counts() == {"done": 1}


async def test_delivery_ids_expire_on_their_own_after_the_redelivery_window(fleet, redis_url):
    """Kept the retention period (14 days), and never less than GitHub's redelivery window."""
    (q,) = fleet(1)
    short = RedisJobQueue(redis_url, retention_days=1, prefix=q.prefix)
    try:
        await q.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")
        await short.enqueue("github", JobRequest("review", "k2", {}), delivery_id="d2")
        ttls = [await q.redis.pttl(q.prefix + f"delivery:{d}") / 1000 for d in ("d1", "d2")]
        for ttl, kept in zip(ttls, (14 * DAY, MIN_DELIVERY_RETENTION), strict=True):
            assert kept - 60 < ttl <= kept
        again = await short.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")
        assert again.skipped == DUPLICATE_DELIVERY
    finally:
        await short.aclose()


async def test_pruning_deletes_old_finished_jobs_and_once_per_revision_still_holds(fleet):
    (q,) = fleet(1)
    for revision in ("r1", "r2"):
        await q.enqueue("gerrit", JobRequest("review", "k", {"revision": revision}, True))
        job = await q.claim()
        await q.finish(job.id, "done")
    await q.enqueue("gerrit", JobRequest("review", "live", {"revision": "x"}, True))
    assert await q.prune() == {"jobs": 0, "deliveries": 0}
    assert await q.prune(now=time.time() + 30 * DAY) == {"jobs": 2, "deliveries": 0}
    assert [j["state"] for j in await q.jobs()] == ["pending"]  # pending jobs are never pruned
    again = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "r2"}, True))
    assert again.skipped == ALREADY_REVIEWED
    assert (await q.enqueue("gerrit", JobRequest("rescan", "k", {"revision": "r2"}))).job_id is not None


async def test_depth_and_age_of_the_queue(fleet):
    (q,) = fleet(1)
    assert await q.oldest_pending_age() == 0.0
    await q.enqueue("github", JobRequest("review", "a", {}))
    await asyncio.sleep(0.2)
    await q.enqueue("github", JobRequest("review", "b", {}))
    assert await q.counts() == {"pending": 2}
    assert 0.15 < await q.oldest_pending_age() < 30


async def test_a_worker_stopping_cleanly_hands_its_jobs_back_at_once(fleet):
    stopping, other = fleet(lease=30.0)
    await other.enqueue("github", JobRequest("review", "k", {}))
    job = await stopping.claim()
    await stopping.aclose()  # SIGTERM: no need to wait 30 s for the lease to run out
    again = await other.claim()
    assert again is not None and again.id == job.id

"""The durable queue: supersession, duplicate deliveries, recovery after a kill.

The tests of the semantics run on both backends (``make_queue``): the embedded SQLite queue and
the Redis one on a real redis-server, so the two are shown to behave alike. Retention works on
each one's own records (SQLite rows backdated here; Redis in tests/test_redis_queue.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time

import pytest

from bot.server.queue import ALREADY_REVIEWED, DUPLICATE_DELIVERY, JobQueue, JobRequest
from tests.redis_server import fresh_prefix

LEASE = 0.3  # the Redis queue's visibility timeout in these tests (seconds)


@pytest.fixture(params=["sqlite", "redis"])
async def make_queue(request, tmp_path):
    """``make_queue()`` opens the queue; called again, it opens the same one anew (a restart)."""
    opened = []
    prefix = fresh_prefix()

    def make():
        if request.param == "sqlite":
            q = JobQueue(tmp_path / "q.sqlite3")
        else:
            from bot.server.redis_queue import RedisJobQueue

            q = RedisJobQueue(request.getfixturevalue("redis_url"), lease_seconds=LEASE, prefix=prefix)
        opened.append(q)
        return q

    yield make
    for q in opened:
        await q.aclose()


async def seen_delivery(q: JobQueue, delivery_id: str) -> bool:
    """Record a webhook delivery id as an enqueue does; True if it was recorded before."""

    def op() -> bool:
        cur = q._db.execute(
            "INSERT OR IGNORE INTO deliveries(delivery_id, received) VALUES (?, ?)",
            (delivery_id, time.time()),
        )
        return cur.rowcount == 0

    return await q._run(op)


async def test_newer_job_supersedes_pending_one_with_the_same_key(make_queue):
    q = make_queue()
    first = await q.enqueue("github", JobRequest("review", "github:o/r#1", {"head": "a"}))
    assert first.superseded == []
    other = (await q.enqueue("github", JobRequest("review", "github:o/r#2", {"head": "x"}))).job_id
    second = await q.enqueue("github", JobRequest("review", "github:o/r#1", {"head": "b"}))
    assert second.superseded == [first.job_id]
    first, second = first.job_id, second.job_id
    states = {j["id"]: j["state"] for j in await q.jobs()}
    assert states == {first: "superseded", other: "pending", second: "pending"}
    claimed = [await q.claim(), await q.claim(), await q.claim()]
    assert [j.id if j else None for j in claimed] == [other, second, None]
    assert claimed[1].payload == {"head": "b"}


async def test_running_job_is_reported_for_cancellation_and_stays_superseded(make_queue):
    q = make_queue()
    job_id = (await q.enqueue("gerrit", JobRequest("review", "k", {}))).job_id
    running = await q.claim()
    assert (await q.enqueue("gerrit", JobRequest("review", "k", {}))).superseded == [running.id]
    await q.supersede(running.id)
    await q.finish(running.id, "done")  # a late finish does not resurrect it
    assert {j["id"]: j["state"] for j in await q.jobs()}[job_id] == "superseded"


async def test_duplicate_delivery_is_recorded_with_its_job(make_queue):
    q = make_queue()
    assert (await q.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")).job_id is not None
    again = await q.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")
    assert (again.job_id, again.skipped) == (None, DUPLICATE_DELIVERY)
    assert len(await q.jobs()) == 1


async def test_automatic_event_for_a_reviewed_revision_is_skipped_but_rescan_is_not(make_queue):
    q = make_queue()
    first = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "abc"}, True))
    job = await q.claim()
    await q.finish(job.id, "done")
    again = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "abc"}, True))
    assert (again.job_id, again.skipped) == (None, ALREADY_REVIEWED)
    assert (await q.enqueue("gerrit", JobRequest("rescan", "k", {"revision": "abc"}))).job_id is not None
    newer = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "def"}, True))
    assert newer.job_id is not None and first.job_id is not None
    # A revision whose job failed for good is tried again by the next event.
    assert (await q.claim()).id == newer.job_id
    await q.finish(newer.job_id, "failed")
    retry = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "def"}, True))
    assert retry.job_id is not None


async def test_jobs_survive_a_kill_and_running_ones_are_recovered(make_queue):
    q = make_queue()
    await q.enqueue("github", JobRequest("review", "a", {"n": 1}))
    await q.enqueue("github", JobRequest("review", "b", {"n": 2}))
    in_flight = await q.claim()
    # No close(): the process dies here (on Redis, its lease runs out).
    again = make_queue()
    await asyncio.sleep(getattr(again, "lease_seconds", 0) + 0.05)
    assert await again.recover() == 1
    ids = sorted([(await again.claim()).id, (await again.claim()).id])
    assert in_flight.id in ids and len(ids) == 2


async def test_retry_later_waits_and_counts_attempts(make_queue):
    q = make_queue()
    await q.enqueue("github", JobRequest("review", "a", {"revision": "abc"}))
    job = await q.claim()
    await q.retry_later(job.id, 0.3, "boom")
    assert await q.claim() is None
    time.sleep(0.35)
    retried = await q.claim()
    assert retried.id == job.id and retried.attempts == 2


# -- retention ---------------------------------------------------------------------------
DAY = 86400.0


def backdate(path, table: str, where: str, params: tuple, days: float) -> None:
    """Age rows in the real SQLite file, as if written ``days`` ago."""
    column = "received" if table == "deliveries" else "updated"
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (time.time() - days * DAY, *params))


async def finished(q: JobQueue, key: str, revision: str, state: str = "done") -> int:
    job_id = (await q.enqueue("github", JobRequest("review", key, {"revision": revision}, True))).job_id
    job = await q.claim()
    assert job is not None and job.id == job_id
    await q.finish(job.id, state)
    return job_id


async def test_pruning_deletes_old_finished_jobs_and_keeps_live_and_recent_ones(tmp_path):
    path = tmp_path / "q.sqlite3"
    q = JobQueue(path)  # retention_days: 14
    a1, a2 = await finished(q, "a", "r1"), await finished(q, "a", "r2")
    b = await finished(q, "b", "r1", "failed")
    d = (await q.enqueue("github", JobRequest("review", "d", {"revision": "r1"}))).job_id
    assert (await q.claim()).id == d  # running
    e, f = await finished(q, "e", "r1"), await finished(q, "f", "r1", "failed")
    c_old = (await q.enqueue("github", JobRequest("review", "c", {"revision": "r1"}))).job_id
    c_new = (await q.enqueue("github", JobRequest("review", "c", {"revision": "r2"}))).job_id
    old = (a1, a2, b, c_old, c_new, d)
    backdate(path, "jobs", f"id IN ({','.join('?' * len(old))})", old, days=30)
    backdate(path, "jobs", "id IN (?, ?)", (e, f), days=13)

    assert await q.prune() == {"jobs": 3, "deliveries": 0}  # a1 (done, not the newest of a), b, c_old
    assert await q.prune() == {"jobs": 0, "deliveries": 0}
    q.close()
    states = {j["id"]: j["state"] for j in await JobQueue(path).jobs()}
    assert states == {a2: "done", d: "running", e: "done", f: "failed", c_new: "pending"}


async def test_pruning_deletes_in_batches(tmp_path, monkeypatch):
    from bot.server import queue as queue_module

    monkeypatch.setattr(queue_module, "PRUNE_BATCH", 3)
    q = JobQueue(tmp_path / "q.sqlite3")
    for n in range(8):
        await finished(q, "k", f"r{n}")
        assert await seen_delivery(q, f"d{n}") is False
    deleted = await q.prune(now=time.time() + 30 * DAY)
    assert deleted == {"jobs": 7, "deliveries": 8}
    assert [j["state"] for j in await q.jobs()] == ["done"]


async def test_delivery_ids_are_kept_long_enough_for_redeliveries(tmp_path):
    path = tmp_path / "q.sqlite3"
    q = JobQueue(path)
    for delivery in ("old", "recent"):
        await q.enqueue("github", JobRequest("review", f"k-{delivery}", {}), delivery_id=delivery)
    backdate(path, "deliveries", "delivery_id = ?", ("old",), days=15)
    backdate(path, "deliveries", "delivery_id = ?", ("recent",), days=13)
    assert (await q.prune())["deliveries"] == 1
    again = await q.enqueue("github", JobRequest("review", "k-recent", {}), delivery_id="recent")
    assert (again.job_id, again.skipped) == (None, DUPLICATE_DELIVERY)
    assert await seen_delivery(q, "recent") is True
    q.close()

    # A short job retention never shortens the delivery window below GitHub's redelivery window.
    short = JobQueue(path, retention_days=1)
    assert await seen_delivery(short, "two-days") is False
    assert await seen_delivery(short, "nine-days") is False
    backdate(path, "deliveries", "delivery_id = ?", ("two-days",), days=2)
    backdate(path, "deliveries", "delivery_id = ?", ("nine-days",), days=9)
    assert (await short.prune())["deliveries"] == 2  # nine-days, and recent (13 days)
    assert await seen_delivery(short, "two-days") is True
    again = await short.enqueue("github", JobRequest("review", "k", {}), delivery_id="two-days")
    assert again.skipped == DUPLICATE_DELIVERY


async def test_once_per_revision_still_holds_after_pruning(tmp_path):
    path = tmp_path / "q.sqlite3"
    q = JobQueue(path)
    await finished(q, "k", "old")
    await finished(q, "k", "head")
    await finished(q, "recent", "r1")
    await finished(q, "recent", "r2")
    backdate(path, "jobs", "key = ?", ("k",), days=400)
    backdate(path, "jobs", "key = ?", ("recent",), days=10)
    assert (await q.prune())["jobs"] == 1  # only k's "old": the newest done review of k stays
    q.close()

    q = JobQueue(path)  # and after a restart
    for key, revision in (("k", "head"), ("recent", "r1"), ("recent", "r2")):
        again = await q.enqueue("gerrit", JobRequest("review", key, {"revision": revision}, True))
        assert (again.job_id, again.skipped) == (None, ALREADY_REVIEWED), (key, revision)
    # Even far in the future the newest review of a key is what "already reviewed" reads.
    await q.prune(now=time.time() + 1000 * DAY)
    again = await q.enqueue("gerrit", JobRequest("review", "k", {"revision": "head"}, True))
    assert again.skipped == ALREADY_REVIEWED
    assert (await q.enqueue("gerrit", JobRequest("rescan", "k", {"revision": "head"}))).job_id is not None


async def test_periodic_pruning_runs_at_start_up_and_again(tmp_path):
    path = tmp_path / "q.sqlite3"
    q = JobQueue(path)
    await finished(q, "k", "r1")
    await finished(q, "k", "r2")
    backdate(path, "jobs", "1", (), days=30)
    task = asyncio.create_task(q.prune_periodically(interval=0.05))
    try:
        for _ in range(100):
            if len(await q.jobs()) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(await q.jobs()) == 1  # at start-up
        await finished(q, "k", "r3")
        backdate(path, "jobs", "1", (), days=30)
        for _ in range(100):
            if len(await q.jobs()) == 1:
                break
            await asyncio.sleep(0.02)
        assert [j["id"] for j in await q.jobs()] == [3]  # and again, later
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_jobs_kept_state_goes_when_the_job_ends(make_queue):
    """What ``begin`` handed back (a check run id) is kept across attempts and restarts, and
    deleted when the job is done or superseded, so the state table does not grow per job."""
    from bot.server.queue import job_state_key

    q = make_queue()
    try:
        first = (await q.enqueue("github", JobRequest("review", "k1", {"revision": "a"}))).job_id
        second = (await q.enqueue("github", JobRequest("review", "k2", {"revision": "b"}))).job_id
        assert first and second
        await q.claim()
        await q.set_state(job_state_key(first), "123")
        await q.set_state(job_state_key(second), "456")
        await q.finish(first)
        await q.supersede(second)
        assert await q.get_state(job_state_key(first)) is None
        assert await q.get_state(job_state_key(second)) is None
    finally:
        await q.aclose()


async def test_a_kept_state_left_by_a_killed_attempt_of_a_superseded_job_is_handed_out_once(make_queue):
    """A scan killed mid-way leaves its job's kept state (its check run, ``in_progress``); when a
    newer push supersedes the job before it runs again (on Redis: while the dead worker's lease
    runs out), the state is handed out once, to whichever worker asks first, for it to close;
    a job superseded or finished by its own worker (which closed what it opened) is not."""
    from bot.server.queue import job_state_key

    q = make_queue()
    killed = (await q.enqueue("github", JobRequest("review", "k", {"revision": "a"}))).job_id
    other = (await q.enqueue("github", JobRequest("review", "o", {"revision": "x"}))).job_id
    assert (await q.claim()).id == killed
    await q.set_state(job_state_key(killed), "111")
    assert (await q.claim()).id == other
    await q.set_state(job_state_key(other), "222")
    await q.supersede(other)  # its own worker cancelled it (and closed its check run)
    # The process dies here; after the restart, a newer push of "k" comes while the job waits to
    # run again (behind others). A push while the dead worker still holds its lease (Redis) is
    # tests/test_scale.py's.
    again = make_queue()
    await asyncio.sleep(getattr(again, "lease_seconds", 0) + 0.05)
    assert await again.recover() == 1
    newer = (await again.enqueue("github", JobRequest("review", "k", {"revision": "b"}))).job_id
    (job, token), *rest = await again.take_unclosed() or [(None, None)]
    assert rest == [] and job is not None, "the killed attempt's state was not handed out"
    assert (job.id, job.key, job.payload, token) == (killed, "k", {"revision": "a"}, "111")
    assert await again.take_unclosed() == []  # once only
    assert await again.get_state(job_state_key(killed)) is None
    assert (await again.claim()).id == newer  # the newer push is reviewed as usual

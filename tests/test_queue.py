"""The durable queue: supersession, duplicate deliveries, recovery after a kill."""

from __future__ import annotations

import time

from bot.server.queue import ALREADY_REVIEWED, DUPLICATE_DELIVERY, JobQueue, JobRequest


async def test_newer_job_supersedes_pending_one_with_the_same_key(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite3")
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


async def test_running_job_is_reported_for_cancellation_and_stays_superseded(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite3")
    job_id = (await q.enqueue("gerrit", JobRequest("review", "k", {}))).job_id
    running = await q.claim()
    assert (await q.enqueue("gerrit", JobRequest("review", "k", {}))).superseded == [running.id]
    await q.supersede(running.id)
    await q.finish(running.id, "done")  # a late finish does not resurrect it
    assert {j["id"]: j["state"] for j in await q.jobs()}[job_id] == "superseded"


async def test_duplicate_delivery_is_recorded_with_its_job(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite3")
    assert (await q.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")).job_id is not None
    again = await q.enqueue("github", JobRequest("review", "k", {}), delivery_id="d1")
    assert (again.job_id, again.skipped) == (None, DUPLICATE_DELIVERY)
    assert len(await q.jobs()) == 1


async def test_automatic_event_for_a_reviewed_revision_is_skipped_but_rescan_is_not(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite3")
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


async def test_jobs_survive_a_kill_and_running_ones_are_recovered(tmp_path):
    path = tmp_path / "q.sqlite3"
    q = JobQueue(path)
    await q.enqueue("github", JobRequest("review", "a", {"n": 1}))
    await q.enqueue("github", JobRequest("review", "b", {"n": 2}))
    in_flight = await q.claim()
    # No close(): the process dies here.
    again = JobQueue(path)
    assert await again.recover() == 1
    ids = sorted([(await again.claim()).id, (await again.claim()).id])
    assert in_flight.id in ids and len(ids) == 2


async def test_retry_later_waits_and_counts_attempts(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite3")
    await q.enqueue("github", JobRequest("review", "a", {"revision": "abc"}))
    job = await q.claim()
    await q.retry_later(job.id, 0.3, "boom")
    assert await q.claim() is None
    time.sleep(0.35)
    retried = await q.claim()
    assert retried.id == job.id and retried.attempts == 2

"""A durable job queue in SQLite, with supersession by key.

Why not a queue library: the bot needs "a newer push replaces the queued or running scan of the
same pull request / change", which is one UNIQUE-key upsert here and a custom layer on top of any
generic queue (persist-queue, huey, arq). SQLite in WAL mode is durable across kills; each call
is a short transaction run in a thread so the event loop never waits on fsync.

A job's life: pending -> running -> done | failed | superseded. Jobs found ``running`` at start-up
(the process was killed) go back to pending, so an acknowledged event is never lost. Finished
jobs and delivery ids are pruned after ``server.retention_days`` (see :meth:`JobQueue.prune`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bot.platforms.base import (
    ALREADY_REVIEWED,
    DUPLICATE_DELIVERY,
    SCAN_UNDER_WAY,
    Enqueued,
    Job,
    JobRequest,
    QueueUnavailable,
)

__all__ = [
    "ALREADY_REVIEWED",
    "DUPLICATE_DELIVERY",
    "SCAN_UNDER_WAY",
    "Enqueued",
    "Job",
    "JobQueue",
    "JobRequest",
    "QueueUnavailable",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, not_before, id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key, state);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries(received);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

log = logging.getLogger(__name__)

DAY = 86400.0
#: GitHub.com lets a webhook delivery be redelivered for 3 days, GitHub Enterprise Server for 7:
#: delivery ids are kept at least this long, whatever ``server.retention_days`` says.
MIN_DELIVERY_RETENTION = 8 * DAY
PRUNE_INTERVAL = 3600.0  # seconds between two prunings of a running service
PRUNE_BATCH = 1000  # rows deleted per transaction, so an enqueue never waits long on a pruning


_JOB_STATE = "job:{}:begun"


def job_state_key(job_id: int) -> str:
    """The state a job keeps across its attempts (what ``Platform.begin`` returned); it goes with
    the job's end."""
    return _JOB_STATE.format(job_id)


def job_state_key_expr(job_id: str, concat: str) -> str:
    """:func:`job_state_key` as an SQL (``concat="||"``) or Lua (``".."``) expression of a job id,
    for the statements and scripts that build the key themselves."""
    prefix, suffix = _JOB_STATE.split("{}")
    return f"'{prefix}' {concat} {job_id} {concat} '{suffix}'"


class JobQueue:
    def __init__(self, path: Path, retention_days: float = 14.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention = retention_days * DAY  # seconds
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.wakeup = asyncio.Event()

    async def _run(self, fn, *args):
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    # -- producer side -------------------------------------------------------------------
    async def enqueue(self, platform: str, request: JobRequest, delivery_id: str | None = None) -> Enqueued:
        """Add a job; pending jobs with the same key are superseded.

        With ``delivery_id``, the delivery is recorded in the same transaction and a delivery seen
        before queues nothing: a redelivered webhook never queues a second scan, and a crash can
        never record a delivery without its job. With ``request.once_per_revision``, nothing is
        queued when a job for the same key and ``payload["revision"]`` exists that neither failed
        nor was superseded (an automatic event for a head already reviewed; ``/rescan`` does not
        set it). A ``rescan`` never supersedes: with a scan of the key pending or running it
        queues nothing (``SCAN_UNDER_WAY``), so a command cannot cancel an automatic review.
        """
        key, payload = request.key, request.payload

        def op() -> Enqueued:
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if delivery_id is not None:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO deliveries(delivery_id, received) VALUES (?, ?)",
                        (delivery_id, now),
                    )
                    if cur.rowcount == 0:
                        self._db.execute("COMMIT")
                        return Enqueued(None, [], DUPLICATE_DELIVERY)
                if request.once_per_revision and self._revision_known(key, str(payload.get("revision"))):
                    self._db.execute("COMMIT")
                    return Enqueued(None, [], ALREADY_REVIEWED)
                rows = self._db.execute(
                    "SELECT id FROM jobs WHERE key = ? AND state IN ('pending', 'running')", (key,)
                ).fetchall()
                if request.kind == "rescan" and rows:
                    # A command never cancels or replaces a scan: the one under way covers it.
                    self._db.execute("COMMIT")
                    return Enqueued(None, [], SCAN_UNDER_WAY)
                self._db.execute(
                    "UPDATE jobs SET state = 'superseded', updated = ? WHERE key = ? AND state = 'pending'",
                    (now, key),
                )
                cur = self._db.execute(
                    "INSERT INTO jobs(platform, kind, key, payload, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
                    (platform, request.kind, key, json.dumps(payload), now, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return Enqueued(int(cur.lastrowid or 0), [r[0] for r in rows])

        result = await self._run(op)
        if result.job_id is not None:
            self.wakeup.set()
        return result

    def _revision_known(self, key: str, revision: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE key = ? AND json_extract(payload, '$.revision') = ? "
            "AND state NOT IN ('superseded', 'failed') LIMIT 1",
            (key, revision),
        ).fetchone()
        return row is not None

    # -- consumer side -------------------------------------------------------------------
    async def recover(self) -> int:
        """Put jobs left ``running`` by a killed process back to pending."""

        def op() -> int:
            return self._db.execute(
                "UPDATE jobs SET state = 'pending', updated = ? WHERE state = 'running'", (time.time(),)
            ).rowcount

        return await self._run(op)

    async def claim(self) -> Job | None:
        """Take the oldest runnable pending job, or None."""

        def op() -> Job | None:
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id, platform, kind, key, payload, attempts, created FROM jobs "
                    "WHERE state = 'pending' AND not_before <= ? ORDER BY id LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                self._db.execute(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated = ? WHERE id = ?",
                    (now, row[0]),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return Job(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5] + 1, row[6])

        return await self._run(op)

    async def finish(self, job_id: int, state: str = "done", error: str | None = None) -> None:
        def op() -> None:
            # A job superseded while it ran stays superseded.
            self._db.execute(
                "UPDATE jobs SET state = ?, error = ?, updated = ? WHERE id = ? AND state = 'running'",
                (state, error, time.time(), job_id),
            )
            self._db.execute("DELETE FROM kv WHERE key = ?", (job_state_key(job_id),))

        await self._run(op)

    async def supersede(self, job_id: int) -> None:
        def op() -> None:
            self._db.execute(
                "UPDATE jobs SET state = 'superseded', updated = ? WHERE id = ?", (time.time(), job_id)
            )
            self._db.execute("DELETE FROM kv WHERE key = ?", (job_state_key(job_id),))

        await self._run(op)

    async def take_unclosed(self, limit: int = 20) -> list[tuple[Job, str]]:
        """Jobs superseded while they waited, whose earlier attempt left something open (its kept
        state: what ``Platform.begin`` returned, e.g. a check run of an attempt killed mid-scan),
        with that state, which is deleted here: each is handed out once, for the worker to close
        (``Platform.close_begun``)."""

        def op() -> list[tuple[Job, str]]:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT j.id, j.platform, j.kind, j.key, j.payload, j.attempts, j.created, kv.value "
                    f"FROM jobs j JOIN kv ON kv.key = {job_state_key_expr('j.id', '||')} "
                    "WHERE j.state = 'superseded' ORDER BY j.id LIMIT ?",
                    (limit,),
                ).fetchall()
                for row in rows:
                    self._db.execute("DELETE FROM kv WHERE key = ?", (job_state_key(row[0]),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return [(Job(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]), r[7]) for r in rows]

        return await self._run(op)

    async def retry_later(self, job_id: int, delay: float, error: str) -> None:
        def op() -> None:
            self._db.execute(
                "UPDATE jobs SET state = 'pending', not_before = ?, error = ?, updated = ? WHERE id = ? AND state = 'running'",
                (time.time() + delay, error, time.time(), job_id),
            )

        await self._run(op)
        self.wakeup.set()

    async def cancelled(self, job_id: int) -> str | None:
        """Why a running job must not publish (see RedisJobQueue.cancelled), or None. In one
        process a newer job cancels the running scan directly (``Workers.cancel_running``), so
        there is nothing to ask here."""
        return None

    async def counts(self) -> dict[str, int]:
        def op() -> dict[str, int]:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

        return await self._run(op)

    async def oldest_pending_age(self) -> float:
        """Seconds the oldest pending job (runnable or waiting for its retry) has waited."""

        def op() -> float:
            row = self._db.execute("SELECT MIN(created) FROM jobs WHERE state = 'pending'").fetchone()
            return max(0.0, time.time() - row[0]) if row and row[0] is not None else 0.0

        return await self._run(op)

    async def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        def op() -> list[dict[str, Any]]:
            sql = "SELECT id, platform, kind, key, state, attempts, error FROM jobs"
            rows = self._db.execute(
                sql + (" WHERE state = ?" if state else "") + " ORDER BY id", (state,) if state else ()
            )
            cols = ["id", "platform", "kind", "key", "state", "attempts", "error"]
            return [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]

        return await self._run(op)

    # -- retention ---------------------------------------------------------------------
    async def prune(self, now: float | None = None) -> dict[str, int]:
        """Delete what the queue no longer needs; returns the rows deleted, ``{"jobs", "deliveries"}``.

        Deleted: finished jobs (done, failed, superseded) last updated more than the retention
        period (``server.retention_days``) before ``now``, and delivery ids received more than the
        retention period, but at least :data:`MIN_DELIVERY_RETENTION`, before ``now`` (so
        GitHub's redeliveries, which an operator can trigger days later, are still recognised).

        Never deleted: pending and running jobs; and, whatever its age, the newest ``done`` job
        of each key, which is what ``once_per_revision`` ("revision already reviewed",
        :meth:`_revision_known`) needs: a pull request or change that sat idle past the retention
        period and is then reopened, marked ready, or found again by the Gerrit catch-up is not
        reviewed a second time. That costs one row per pull request or change ever reviewed, not
        one per push or event. Older done jobs of a key (revisions the key has since moved on
        from) go after the retention period; within it nothing a duplicate or "already reviewed"
        check reads is ever deleted. Failed and superseded jobs never count as reviewed, so
        deleting them changes no decision.

        Rows go in batches of :data:`PRUNE_BATCH`, each its own transaction; freed pages are
        reused by SQLite, so the file stops growing (it does not shrink without a VACUUM).
        """
        now = time.time() if now is None else now
        job_cutoff = now - self.retention
        delivery_cutoff = now - max(self.retention, MIN_DELIVERY_RETENTION)

        def jobs_batch() -> int:
            return self._db.execute(
                "DELETE FROM jobs WHERE id IN ("
                " SELECT id FROM jobs WHERE state IN ('done', 'failed', 'superseded') AND updated < ?"
                " AND id NOT IN (SELECT MAX(id) FROM jobs WHERE state = 'done' GROUP BY key)"
                " LIMIT ?)",
                (job_cutoff, PRUNE_BATCH),
            ).rowcount

        def deliveries_batch() -> int:
            return self._db.execute(
                "DELETE FROM deliveries WHERE rowid IN "
                "(SELECT rowid FROM deliveries WHERE received < ? LIMIT ?)",
                (delivery_cutoff, PRUNE_BATCH),
            ).rowcount

        deleted = {"jobs": 0, "deliveries": 0}
        for table, batch in (("jobs", jobs_batch), ("deliveries", deliveries_batch)):
            while True:
                n = await self._run(batch)
                deleted[table] += n
                if n < PRUNE_BATCH:
                    break
        return deleted

    async def prune_periodically(self, interval: float = PRUNE_INTERVAL) -> None:
        """Prune now (at start-up), then every ``interval`` seconds until cancelled.

        A failed pruning is logged and tried again next time; it never stops the service.
        """
        while True:
            try:
                deleted = await self.prune()
            except Exception as exc:  # e.g. "database is locked": the next round catches up
                log.warning("pruning the queue failed: %r", exc)
            else:
                if any(deleted.values()):
                    log.info(
                        "pruned %d finished job(s) and %d delivery id(s) past retention",
                        deleted["jobs"],
                        deleted["deliveries"],
                    )
            await asyncio.sleep(interval)

    # -- small persistent state (e.g. the Gerrit stream's last event time) -----------------
    async def get_state(self, key: str) -> str | None:
        def op() -> str | None:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

        return await self._run(op)

    async def set_state(self, key: str, value: str) -> None:
        def op() -> None:
            self._db.execute(
                "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

        await self._run(op)

    def start(self) -> None:
        """Nothing runs in the background of the embedded queue (see RedisJobQueue.start)."""

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""The job queue in Redis, for a fleet of processes on many hosts; same interface and semantics as
the embedded SQLite queue (:class:`bot.server.queue.JobQueue`).

Why plain redis-py with Lua rather than a job library (arq, taskiq) or bare Streams consumer
groups: every decision the queue makes (delivery seen? revision reviewed? which jobs does this
push supersede? is a running scan to be cancelled?) reads and writes several records at once, and
must be atomic across web processes; one Lua script per operation is that, in one round trip.
A generic queue would still need all of it layered on top, plus its own records (see
docs/decisions/0006-redis-queue.md for the measurements).

Records (``prefix`` defaults to ``patchwarden:``):

- ``job:{id}`` hash: platform, kind, key, payload, revision, state, attempts, not_before, created,
  updated, error, ``owner`` (host:pid of its last claimant), ``cancel`` (set when a newer job
  supersedes it while it runs);
- ``pending`` zset (id by id: oldest first), ``delayed`` zset (by not_before: retries with
  backoff), ``running`` zset (by lease deadline: the visibility timeout);
- ``active:{key}`` set of the pending and running ids of a key (supersession);
- ``done:{key}`` zset of reviewed revisions (``once_per_revision``); ``finished:{state}`` zsets
  by time (counts and retention); ``delivery:{id}`` strings that expire on their own; ``kv`` hash.

At-least-once: a claimed job carries a lease that its worker renews every second
(:meth:`RedisJobQueue.heartbeat`); a worker killed with ``kill -9`` stops renewing, and after
``lease_seconds`` any worker's next claim takes the job back (``XAUTOCLAIM``'s idea, on the
zset). A worker that lost its lease (it was paused, its job was reclaimed) is told its job was
cancelled, and its ``finish`` is refused: one claimant at a time publishes, and the run markers
make a publish repeated after a kill a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.platforms.base import ALREADY_REVIEWED, DUPLICATE_DELIVERY, SCAN_UNDER_WAY, Enqueued, Job, JobRequest
from bot.server.queue import DAY, MIN_DELIVERY_RETENTION, PRUNE_INTERVAL, QueueUnavailable, job_state_key_expr

log = logging.getLogger(__name__)

# JOB_STATE in a script is the ``kv`` field of job ``id``'s kept state, queue.job_state_key.
_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

_ENQUEUE = (
    _NOW
    + """
local P, platform, kind, key, payload, revision = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local once, delivery, delivery_ms = ARGV[7] == '1', ARGV[8], ARGV[9]
if delivery ~= '' then
  if not redis.call('SET', P .. 'delivery:' .. delivery, now, 'NX', 'PX', delivery_ms) then return {-1} end
end
local akey = P .. 'active:' .. key
local active = redis.call('SMEMBERS', akey)
table.sort(active, function(a, b) return tonumber(a) < tonumber(b) end)
if once and revision ~= '' then
  if redis.call('ZSCORE', P .. 'done:' .. key, revision) then return {-2} end
  for _, id in ipairs(active) do
    if redis.call('HGET', P .. 'job:' .. id, 'revision') == revision then return {-2} end
  end
end
if kind == 'rescan' and #active > 0 then return {-3} end
local result = {0}
local cancelled = false
for _, id in ipairs(active) do
  local jk = P .. 'job:' .. id
  table.insert(result, tonumber(id))
  if redis.call('HGET', jk, 'state') == 'pending' then
    redis.call('HSET', jk, 'state', 'superseded', 'updated', now)
    redis.call('ZREM', P .. 'pending', id)
    redis.call('ZREM', P .. 'delayed', id)
    redis.call('SREM', akey, id)
    redis.call('ZADD', P .. 'finished:superseded', now, id)
    if redis.call('HEXISTS', P .. 'kv', JOB_STATE) == 1 then
      redis.call('SADD', P .. 'unclosed', id)
    end
  else
    redis.call('HSET', jk, 'cancel', '1')
    cancelled = true
  end
end
local id = redis.call('INCR', P .. 'seq')
redis.call('HSET', P .. 'job:' .. id, 'platform', platform, 'kind', kind, 'key', key, 'payload', payload,
  'revision', revision, 'state', 'pending', 'attempts', 0, 'not_before', 0, 'created', now, 'updated', now)
redis.call('SADD', akey, id)
redis.call('ZADD', P .. 'pending', id, id)
result[1] = id
redis.call('PUBLISH', P .. 'events', cancelled and 'cancel' or 'wake')
return result
"""
)

# Expired leases back to pending (or to superseded, when a newer job asked to cancel them).
_RECLAIM = """
local reclaimed = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'running', '-inf', now)) do
  local jk = P .. 'job:' .. id
  redis.call('ZREM', P .. 'running', id)
  if redis.call('HGET', jk, 'cancel') == '1' then
    redis.call('HSET', jk, 'state', 'superseded', 'updated', now)
    redis.call('SREM', P .. 'active:' .. redis.call('HGET', jk, 'key'), id)
    redis.call('ZADD', P .. 'finished:superseded', now, id)
    if redis.call('HEXISTS', P .. 'kv', JOB_STATE) == 1 then
      redis.call('SADD', P .. 'unclosed', id)
    end
  else
    redis.call('HSET', jk, 'state', 'pending', 'updated', now)
    redis.call('ZADD', P .. 'pending', id, id)
    reclaimed = reclaimed + 1
  end
end
"""

_RECOVER = _NOW + "local P = ARGV[1]\n" + _RECLAIM + "return reclaimed\n"

_CLAIM = (
    _NOW
    + "local P, lease, owner = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    + _RECLAIM
    + """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now)) do
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('ZADD', P .. 'pending', id, id)
end
local first = redis.call('ZRANGE', P .. 'pending', 0, 0)
if #first == 0 then return {reclaimed} end
local id = first[1]
local jk = P .. 'job:' .. id
redis.call('ZREM', P .. 'pending', id)
local attempts = redis.call('HINCRBY', jk, 'attempts', 1)
redis.call('HSET', jk, 'state', 'running', 'updated', now, 'owner', owner)
redis.call('ZADD', P .. 'running', now + lease, id)
local f = redis.call('HMGET', jk, 'platform', 'kind', 'key', 'payload', 'created')
return {reclaimed, tonumber(id), f[1], f[2], f[3], f[4], f[5], attempts}
"""
)

# finish/retry/supersede of a running job only by its claimant: the one that claimed attempt ARGV[3].
_MINE = """
local jk = P .. 'job:' .. id
local state = redis.call('HGET', jk, 'state')
local mine = state == 'running' and redis.call('HGET', jk, 'attempts') == ARGV[3]
"""

_FINISH = (
    _NOW
    + "local P, id, outcome, err, retention = ARGV[1], ARGV[2], ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
    + _MINE
    + """
redis.call('HDEL', P .. 'kv', JOB_STATE)
if not mine then return 0 end
local key, revision = unpack(redis.call('HMGET', jk, 'key', 'revision'))
redis.call('HSET', jk, 'state', outcome, 'error', err, 'updated', now)
redis.call('ZREM', P .. 'running', id)
redis.call('SREM', P .. 'active:' .. key, id)
redis.call('ZADD', P .. 'finished:' .. outcome, now, id)
if outcome == 'done' and revision ~= '' then
  local dkey = P .. 'done:' .. key
  redis.call('ZADD', dkey, now, revision)
  redis.call('ZREMRANGEBYSCORE', dkey, '-inf', '(' .. (now - retention))
end
return 1
"""
)

_RETRY = (
    _NOW
    + "local P, id, delay, err = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5]\n"
    + _MINE
    + """
if not mine then return 0 end
redis.call('ZREM', P .. 'running', id)
if redis.call('HGET', jk, 'cancel') == '1' then
  -- superseded while it ran: the newer job covers it, no retry of an old head
  redis.call('HSET', jk, 'state', 'superseded', 'error', err, 'updated', now)
  redis.call('SREM', P .. 'active:' .. redis.call('HGET', jk, 'key'), id)
  redis.call('ZADD', P .. 'finished:superseded', now, id)
  return 2
end
redis.call('HSET', jk, 'state', 'pending', 'not_before', now + delay, 'error', err, 'updated', now)
redis.call('ZADD', P .. 'delayed', now + delay, id)
return 1
"""
)

_SUPERSEDE = (
    _NOW
    + "local P, id = ARGV[1], ARGV[2]\n"
    + _MINE
    + """
-- a claimant that lost its lease stops, but the job is another worker's now
if state == 'running' and not mine then return 0 end
redis.call('HDEL', P .. 'kv', JOB_STATE)
local key = redis.call('HGET', jk, 'key')
if not key then return 0 end
for _, z in ipairs({'pending', 'delayed', 'running', 'finished:done', 'finished:failed'}) do
  redis.call('ZREM', P .. z, id)
end
redis.call('HSET', jk, 'state', 'superseded', 'updated', now)
redis.call('SREM', P .. 'active:' .. key, id)
redis.call('ZADD', P .. 'finished:superseded', now, id)
return 1
"""
)

# Renew the leases of the jobs this process runs: ARGV[3..] are id, attempt pairs. Returns id,
# reason pairs of those it must stop: 1 cancelled by a newer job, 2 no longer its own (reclaimed
# by another worker after a pause longer than the lease).
_HEARTBEAT = (
    _NOW
    + "local P, lease = ARGV[1], tonumber(ARGV[2])\n"
    + """
local stop = {}
for i = 3, #ARGV, 2 do
  local id, attempt = ARGV[i], ARGV[i + 1]
  local jk = P .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'state', 'attempts', 'cancel')
  if f[1] ~= 'running' or f[2] ~= attempt then
    table.insert(stop, tonumber(id))
    table.insert(stop, 2)
  elseif f[3] == '1' then
    table.insert(stop, tonumber(id))
    table.insert(stop, 1)
  else
    redis.call('ZADD', P .. 'running', 'XX', now + lease, id)
  end
end
return stop
"""
)

# Superseded jobs whose kept state an earlier attempt left (a kill mid-scan): handed out once each.
_TAKE_UNCLOSED = """
local P, limit = ARGV[1], tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('SPOP', P .. 'unclosed', limit)) do
  local field = JOB_STATE
  local token = redis.call('HGET', P .. 'kv', field)
  local f = redis.call('HMGET', P .. 'job:' .. id, 'platform', 'kind', 'key', 'payload', 'attempts', 'created')
  redis.call('HDEL', P .. 'kv', field)
  if token and f[1] then
    table.insert(out, {tonumber(id), f[1], f[2], f[3], f[4], f[5], f[6], token})
  end
end
return out
"""

STATES = ("pending", "running", "done", "failed", "superseded")


class RedisJobQueue:
    """:class:`bot.server.queue.JobQueue`'s interface on a Redis server shared by many processes.

    ``on_cancel(key, ids, lost)`` is called when a job this process runs must stop: a newer job
    of its key came, through any web process (``lost`` False), or another worker took the job
    back after this one stalled past its lease (``lost`` True). The server wires it to
    ``Workers.cancel_running``."""

    def __init__(
        self,
        url: str,
        retention_days: float = 14.0,
        lease_seconds: float = 30.0,
        prefix: str = "patchwarden:",
    ) -> None:
        self.url = url
        self.retention = retention_days * DAY
        self.lease_seconds = lease_seconds
        self.prefix = prefix
        self.owner = f"{socket.gethostname()}:{os.getpid()}"  # who runs a job, for operators
        self.redis = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        self.wakeup = asyncio.Event()
        self.on_cancel: Callable[[str, list[int], bool], None] | None = None
        self._mine: dict[int, tuple[int, str]] = {}  # job id -> (attempt, key) claimed here
        self._tasks: list[asyncio.Task] = []
        scripts = {"enqueue": _ENQUEUE, "claim": _CLAIM, "recover": _RECOVER, "finish": _FINISH,
                   "retry": _RETRY, "supersede": _SUPERSEDE, "heartbeat": _HEARTBEAT,
                   "take_unclosed": _TAKE_UNCLOSED}  # fmt: skip
        state = job_state_key_expr("id", "..")
        self._scripts = {
            name: self.redis.register_script(text.replace("JOB_STATE", state))
            for name, text in scripts.items()
        }

    async def _call(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](args=[self.prefix, *args])
        except RedisError as exc:
            raise QueueUnavailable(f"Redis queue at {self.url} unavailable: {exc}") from exc

    async def _do(self, op: Awaitable[Any]) -> Any:
        try:
            return await op
        except RedisError as exc:
            raise QueueUnavailable(f"Redis queue at {self.url} unavailable: {exc}") from exc

    async def ping(self) -> None:
        await self._do(self.redis.ping())

    # -- producer side -------------------------------------------------------------------
    async def enqueue(self, platform: str, request: JobRequest, delivery_id: str | None = None) -> Enqueued:
        """As :meth:`JobQueue.enqueue`, atomically across processes (one Lua script)."""
        revision = request.payload.get("revision")
        delivery_ms = int(max(self.retention, MIN_DELIVERY_RETENTION) * 1000)
        result = await self._call(
            "enqueue", platform, request.kind, request.key, json.dumps(request.payload),
            "" if revision is None else str(revision), int(request.once_per_revision),
            delivery_id or "", delivery_ms,
        )  # fmt: skip
        code = int(result[0])
        if code < 0:
            reason = {-1: DUPLICATE_DELIVERY, -2: ALREADY_REVIEWED, -3: SCAN_UNDER_WAY}[code]
            return Enqueued(None, [], reason)
        self.wakeup.set()
        return Enqueued(code, [int(i) for i in result[1:]])

    # -- consumer side -------------------------------------------------------------------
    async def recover(self) -> int:
        """Put jobs whose lease expired (their worker died) back to pending; also done by every
        claim, so a fleet needs no start-up step."""
        return int(await self._call("recover"))

    async def claim(self) -> Job | None:
        result = await self._call("claim", self.lease_seconds, self.owner)
        if int(result[0]):
            log.info("took back %d job(s) whose worker stopped renewing its lease", int(result[0]))
        if len(result) == 1:
            return None
        _, job_id, platform, kind, key, payload, created, attempts = result
        job = Job(int(job_id), platform, kind, key, json.loads(payload), int(attempts), float(created))
        self._mine[job.id] = (job.attempts, job.key)
        return job

    def _attempt(self, job_id: int) -> int:
        return self._mine.get(job_id, (0, ""))[0]

    async def finish(self, job_id: int, state: str = "done", error: str | None = None) -> None:
        done = await self._call("finish", job_id, self._attempt(job_id), state, error or "", self.retention)
        self._mine.pop(job_id, None)
        if not int(done):
            log.info(
                "job %s finished here but no longer held by this worker: outcome %s not recorded",
                job_id,
                state,
            )

    async def supersede(self, job_id: int) -> None:
        await self._call("supersede", job_id, self._attempt(job_id))
        self._mine.pop(job_id, None)

    async def take_unclosed(self, limit: int = 20) -> list[tuple[Job, str]]:
        """As :meth:`JobQueue.take_unclosed`: whichever worker asks first gets each one."""
        rows = await self._call("take_unclosed", limit)
        return [
            (Job(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), int(r[5] or 0), float(r[6] or 0)), r[7])
            for r in rows
        ]

    async def retry_later(self, job_id: int, delay: float, error: str) -> None:
        await self._call("retry", job_id, self._attempt(job_id), delay, error)
        self._mine.pop(job_id, None)
        self.wakeup.set()

    async def cancelled(self, job_id: int) -> str | None:
        """Why the running job must not publish: ``"superseded"`` (a newer job of its key came),
        ``"lost"`` (another worker holds it now), or None."""
        state, attempts, cancel = await self._do(
            self.redis.hmget(self._k(f"job:{job_id}"), "state", "attempts", "cancel")
        )
        if state != "running" or attempts != str(self._attempt(job_id)):
            return "lost"
        return "superseded" if cancel == "1" else None

    async def heartbeat(self) -> list[tuple[int, bool]]:
        """Renew the leases of the jobs running here; tell ``on_cancel`` about those to stop.
        Returns them as (job id, lost) pairs."""
        mine = dict(self._mine)
        if not mine:
            return []
        pairs = [str(v) for job_id, (attempt, _) in mine.items() for v in (job_id, attempt)]
        answer = [int(i) for i in await self._call("heartbeat", self.lease_seconds, *pairs)]
        stop = [(answer[i], answer[i + 1] == 2) for i in range(0, len(answer), 2)]
        for job_id, lost in stop:
            if job_id in mine and self.on_cancel is not None:
                self.on_cancel(mine[job_id][1], [job_id], lost)
        return stop

    async def _heartbeats(self) -> None:
        interval = min(1.0, self.lease_seconds / 3)
        while True:
            try:
                await self.heartbeat()
            except QueueUnavailable as exc:
                log.warning("lease renewal failed: %s", exc)
            await asyncio.sleep(interval)

    async def _listen(self) -> None:
        """Enqueues anywhere wake the workers here at once; a cancellation checks the leases now."""
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._k("events"))
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        self.wakeup.set()
                        if message.get("data") == "cancel":
                            await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except (RedisError, QueueUnavailable, OSError) as exc:
                log.warning("queue notifications lost (%s); polling until they are back", exc)
                await asyncio.sleep(1.0)

    def start(self) -> None:
        """Background tasks of a consuming process: lease renewal and notifications."""
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="queue-heartbeat"),
            asyncio.create_task(self._listen(), name="queue-notifications"),
        ]

    # -- inspection ------------------------------------------------------------------------
    def _k(self, name: str) -> str:
        return self.prefix + name

    async def counts(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in ("pending", "delayed", "running", "finished:done", "finished:failed",
                         "finished:superseded"):  # fmt: skip
                pipe.zcard(self._k(name))
            pending, delayed, running, done, failed, superseded = await self._do(pipe.execute())
        counts = {"pending": pending + delayed, "running": running, "done": done, "failed": failed,
                  "superseded": superseded}  # fmt: skip
        return {state: n for state, n in counts.items() if n}

    async def oldest_pending_age(self) -> float:
        """Seconds the oldest pending job (runnable or waiting for its retry) has waited."""
        ids = await self._do(self.redis.zrange(self._k("pending"), 0, 0))
        ids += await self._do(self.redis.zrange(self._k("delayed"), 0, 0))
        created = [await self._do(self.redis.hget(self._k(f"job:{i}"), "created")) for i in ids]
        times = [float(c) for c in created if c]
        return max(0.0, time.time() - min(times)) if times else 0.0

    async def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        names = ["pending", "delayed", "running", "finished:done", "finished:failed", "finished:superseded"]
        ids: set[int] = set()
        for name in names:
            ids |= {int(i) for i in await self._do(self.redis.zrange(self._k(name), 0, -1))}
        cols = ["id", "platform", "kind", "key", "state", "attempts", "error"]
        rows = []
        for job_id in sorted(ids):
            values = await self._do(self.redis.hmget(self._k(f"job:{job_id}"), *cols[1:]))
            if values[0] is None:
                continue
            row = dict(zip(cols, [job_id, *values], strict=True))
            row["attempts"] = int(row["attempts"])
            row["error"] = row["error"] or None
            if state is None or row["state"] == state:
                rows.append(row)
        return rows

    # -- retention ---------------------------------------------------------------------------
    async def prune(self, now: float | None = None) -> dict[str, int]:
        """Delete finished jobs last updated more than the retention period before ``now``.

        Delivery ids need no pruning (they expire on their own after the retention period, at
        least :data:`MIN_DELIVERY_RETENTION`), and the reviewed revisions of a key are trimmed
        to the retention period at each finish, never the newest (``once_per_revision``)."""
        cutoff = (time.time() if now is None else now) - self.retention
        deleted = 0
        for state in ("done", "failed", "superseded"):
            zset = self._k(f"finished:{state}")
            old = await self._do(self.redis.zrangebyscore(zset, "-inf", cutoff, start=0, num=1000))
            while old:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zrem(zset, *old)
                    pipe.delete(*(self._k(f"job:{i}") for i in old))
                    await self._do(pipe.execute())
                deleted += len(old)
                old = await self._do(self.redis.zrangebyscore(zset, "-inf", cutoff, start=0, num=1000))
        return {"jobs": deleted, "deliveries": 0}

    async def prune_periodically(self, interval: float = PRUNE_INTERVAL) -> None:
        while True:
            try:
                deleted = await self.prune()
            except QueueUnavailable as exc:
                log.warning("pruning the queue failed: %s", exc)
            else:
                if deleted["jobs"]:
                    log.info("pruned %d finished job(s) past retention", deleted["jobs"])
            await asyncio.sleep(interval)

    # -- small shared state (the Gerrit stream's last event time, a job's check run) ----------
    async def get_state(self, key: str) -> str | None:
        return await self._do(self.redis.hget(self._k("kv"), key))

    async def set_state(self, key: str, value: str) -> None:
        await self._do(self.redis.hset(self._k("kv"), key, value))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def close(self) -> None:
        """Synchronous like JobQueue.close: the connection pool is closed by :meth:`aclose`."""

    async def aclose(self) -> None:
        """Stop; jobs still held here (the service stopped mid-scan) go back to pending at once
        rather than when their lease runs out."""
        await self.stop()
        for job_id in list(self._mine):
            with contextlib.suppress(QueueUnavailable):
                await self.retry_later(job_id, 0.0, "the worker holding it stopped")
        await self.redis.aclose()

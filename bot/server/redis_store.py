"""What a fleet shares through Redis besides the queue (bot.platforms.base.SharedStore): write
pacing counted once for all processes, short-lived values (installation tokens), and leases
(one Gerrit event stream for the whole fleet).

Leases are the usual single-instance Redis lock: ``SET key token NX PX ttl``, renewed by the
holder (only while the key still holds its token, checked and extended in one script) every
third of the ttl, deleted on a clean stop. A holder killed with ``kill -9`` stops renewing; the
key expires after ``ttl`` and the next waiter's poll takes it. A holder that cannot reach Redis
stops its work before its lease can have expired, so two holders never overlap by more than the
clock drift between hosts within one ttl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_RESERVE = """
local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local base, interval = KEYS[1], tonumber(ARGV[1])
local wait = 0
local last = redis.call('GET', base .. ':last')
if interval > 0 and last then wait = math.max(wait, tonumber(last) + interval - now) end
for i = 2, #ARGV, 2 do
  local n, span = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local key = base .. ':' .. span
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  if redis.call('ZCARD', key) >= n then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + span - now)
  end
end
if wait > 0 then return tostring(wait) end
local seq = redis.call('INCR', base .. ':seq')
local longest = 1
for i = 2, #ARGV, 2 do
  local span = tonumber(ARGV[i + 1])
  local key = base .. ':' .. span
  redis.call('ZADD', key, now, now .. ':' .. seq)
  redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
  longest = math.max(longest, span)
end
redis.call('PEXPIRE', base .. ':seq', math.ceil(longest * 1000) + 1000)
redis.call('SET', base .. ':last', now, 'PX', math.ceil(math.max(interval, 1) * 1000))
return '0'
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisShared:
    """:class:`bot.platforms.base.SharedStore` on a Redis server (the queue's, by default)."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str = "patchwarden:", lease_seconds: float = 15.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self._reserve = redis.register_script(_RESERVE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def reserve(self, name: str, limits: Sequence[tuple[int, float]], interval: float = 0.0) -> float:
        args: list[float] = [interval]
        for n, seconds in limits:
            if n > 0:
                args += [int(n), float(seconds)]
        return float(await self._reserve(keys=[self.prefix + "rate:" + name], args=args))

    async def get(self, key: str) -> str | None:
        value = await self.redis.get(self.prefix + "shared:" + key)
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, key: str, value: str, ttl: float) -> None:
        await self.redis.set(self.prefix + "shared:" + key, value, px=max(1, int(ttl * 1000)))

    async def holder(self, name: str) -> str | None:
        """The token of whoever holds the lease ``name`` (for operators and tests)."""
        value = await self.redis.get(self.prefix + "lease:" + name)
        return value.decode() if isinstance(value, bytes) else value

    async def exclusive(
        self, name: str, body: Callable[[], Awaitable[None]], standby: Callable[[bool], None]
    ) -> None:
        key = self.prefix + "lease:" + name
        token = uuid.uuid4().hex
        ttl_ms = int(self.lease_seconds * 1000)
        renew_every = self.lease_seconds / 3
        while True:
            standby(True)
            while True:
                try:
                    if await self.redis.set(key, token, nx=True, px=ttl_ms):
                        break
                except RedisError as exc:
                    log.warning("lease %s: Redis unreachable (%s)", name, exc)
                await asyncio.sleep(min(2.0, renew_every))
            renewed = time.monotonic()
            standby(False)
            log.info("holding the fleet's lease %s (%s)", name, token[:8])
            task = asyncio.ensure_future(body())
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=renew_every)
                    if task.done():
                        break
                    try:
                        if not await self._renew(keys=[key], args=[token, ttl_ms]):
                            log.warning("lease %s lost to another process: stopping", name)
                            break
                        renewed = time.monotonic()
                    except RedisError as exc:
                        if time.monotonic() - renewed > self.lease_seconds * 0.6:
                            log.warning("lease %s not renewable (%s): stopping before it expires", name, exc)
                            break
            finally:
                task.cancel()
                await asyncio.wait({task})  # unlike ``await task``, never swallows our own cancel
                with contextlib.suppress(RedisError):
                    await self._release(keys=[key], args=[token])
            if not task.cancelled() and task.exception() is not None:
                log.warning("work under lease %s failed: %r", name, task.exception())

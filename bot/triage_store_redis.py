"""Triage decisions in Redis (``server.queue_url``), so every process of a fleet sees them: an
``/ignore`` carried out by one web process is honoured by the workers on every host.

Same records as :class:`bot.triage_store.SqliteTriageStore`: ``ignores:{scope}:{key}`` hashes
(fingerprint -> decision, kept while in force: the first one wins), an append-only ``audit``
list, and ``command:{id}`` markers. Calls run in a thread, like the SQLite store's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import redis

from bot.triage import Ignore


class RedisTriageStore:
    def __init__(self, url: str, prefix: str = "patchwarden:triage:") -> None:
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5
        )

    async def _run(self, fn, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def add(self, decision: Ignore) -> bool:
        value = json.dumps(asdict(decision), sort_keys=True)

        def op() -> bool:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(self.prefix + "audit", value)
                pipe.hsetnx(
                    f"{self.prefix}ignores:{decision.scope}:{decision.key}", decision.fingerprint, value
                )
                return bool(pipe.execute()[1])

        return await self._run(op)

    async def decisions(self, change_key: str, repository_key: str) -> list[Ignore]:
        def op() -> list[Ignore]:
            values = self._redis.hvals(f"{self.prefix}ignores:change:{change_key}")
            values += self._redis.hvals(f"{self.prefix}ignores:repository:{repository_key}")
            return sorted((Ignore(**json.loads(v)) for v in values), key=lambda d: d.when)

        return await self._run(op)

    async def audit(self) -> list[Ignore]:
        def op() -> list[Ignore]:
            return [Ignore(**json.loads(v)) for v in self._redis.lrange(self.prefix + "audit", 0, -1)]

        return await self._run(op)

    async def claim_command(self, command_id: str) -> bool:
        key = f"{self.prefix}command:{command_id}"
        return bool(await self._run(lambda: self._redis.set(key, "1", nx=True)))

    async def handled(self, command_id: str) -> bool:
        return bool(await self._run(self._redis.exists, f"{self.prefix}command:{command_id}"))

    def close(self) -> None:
        self._redis.close()

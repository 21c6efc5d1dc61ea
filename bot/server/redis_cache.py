"""The per-file result cache (bot.cache) in Redis, shared by every worker of a fleet.

Same keys and the same checks as the SQLite cache (``bot.cache.wanted_keys`` / ``verified``:
an entry answers only for the very same bytes, path and analyzer identity). The bound is a time
to live, renewed on every hit, instead of a row count: the Redis server is shared with the queue,
whose records must never be evicted, so the operator runs it with ``maxmemory-policy
noeviction`` and the cache keeps itself small. Any Redis problem turns the cache off for that
call and is logged: the review then runs the analyzers as if nothing were cached.

The calls are synchronous, as the SQLite cache's are: one round trip per analyzer and change.
"""

from __future__ import annotations

import json
import logging
import threading

import redis
from redis.exceptions import RedisError

from bot.cache import FileResult, ResultCache, entries, verified, wanted_keys

log = logging.getLogger(__name__)

DAY = 86400.0


class RedisResultCache(ResultCache):
    def __init__(self, url: str, ttl_days: float = 14.0, prefix: str = "patchwarden:cache:") -> None:
        self.path = url
        self.ttl_ms = int(ttl_days * DAY * 1000)
        self.prefix = prefix
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        try:
            return sum(1 for _ in self._redis.scan_iter(match=self.prefix + "*", count=1000))
        except RedisError:
            return 0

    def get_many(self, analyzer_key: str, files: dict[str, bytes]) -> dict[str, FileResult]:
        wanted = wanted_keys(analyzer_key, files)
        found: dict[str, FileResult] = {}
        if not wanted:
            return found
        keys = list(wanted)
        try:
            values = self._redis.mget([self.prefix + k for k in keys])
            rows = [(k, *json.loads(v)) for k, v in zip(keys, values, strict=True) if v is not None]
            found, used = verified(wanted, rows)
            if used:
                with self._redis.pipeline(transaction=False) as pipe:
                    for key in used:
                        pipe.pexpire(self.prefix + key, self.ttl_ms)
                    pipe.execute()
        except (RedisError, ValueError, TypeError) as exc:
            log.warning("result cache read failed: %s", exc)
            found = {}
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, analyzer_key: str, results: dict[str, tuple[bytes, FileResult]]) -> None:
        if not results:
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for key, digest, length, value in entries(analyzer_key, results):
                    pipe.set(self.prefix + key, json.dumps([digest, length, value]), px=self.ttl_ms)
                pipe.execute()
        except RedisError as exc:
            log.warning("result cache write failed: %s", exc)

    def prune(self) -> int:
        return 0  # entries expire on their own

"""What a fleet shares in Redis besides the queue, on a real redis-server: GitHub's write pacing
counted once for all processes, installation tokens, the one lease of the Gerrit stream, and the
per-file result cache."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from bot.cache import FileResult
from bot.config import GitHubSettings
from bot.model import Finding, Severity
from bot.platforms.github import GitHubPlatform, Pacer
from bot.server.redis_cache import RedisResultCache
from bot.server.redis_store import RedisShared
from tests.fakes.github import FakeGitHub, generate_app_key
from tests.redis_server import fresh_prefix


def shared(url: str, prefix: str, lease: float = 15.0) -> RedisShared:
    return RedisShared(aioredis.Redis.from_url(url, decode_responses=True), prefix, lease)


async def test_two_processes_pacers_count_their_writes_together(redis_url):
    """GitHub's secondary limit is per account, not per process: with the windows in Redis, what
    one process wrote counts against the other (rate-limits-for-the-rest-api.md, "About secondary
    rate limits": content-creating requests per minute)."""
    prefix = fresh_prefix()
    a, b = shared(redis_url, prefix), shared(redis_url, prefix)
    try:
        limits = [(3, 60.0), (500, 3600.0)]
        assert [await a.reserve("github:writes", limits) for _ in range(2)] == [0.0, 0.0]
        assert await b.reserve("github:writes", limits) == 0.0
        wait = await b.reserve("github:writes", limits)  # the fourth in the minute, from either
        assert 55 < wait <= 60
        assert await a.reserve("github:writes", limits) > 55
        # The Pacer of a GitHub platform uses it when shared (Platform.share).
        pacer = Pacer(0.0, [(3, 60.0)])
        pacer.shared = a
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await pacer.wait()
        assert pacer.delay() == 0.0  # nothing counted locally: the shared windows decide
    finally:
        await a.redis.aclose()
        await b.redis.aclose()


async def test_an_interval_between_writes_is_shared_too(redis_url):
    a = shared(redis_url, fresh_prefix())
    try:
        assert await a.reserve("w", [], interval=5.0) == 0.0
        assert 4 < await a.reserve("w", [], interval=5.0) <= 5.0
    finally:
        await a.redis.aclose()


async def test_one_lease_holder_at_a_time_and_a_standby_takes_over(redis_url):
    prefix = fresh_prefix()
    a, b = shared(redis_url, prefix, lease=0.6), shared(redis_url, prefix, lease=0.6)
    running: list[str] = []
    standby: dict[str, bool] = {}

    def body(name: str):
        async def run() -> None:
            running.append(name)
            await asyncio.Event().wait()  # an event stream: runs until cancelled

        return run

    first = asyncio.create_task(a.exclusive("stream", body("a"), lambda w: standby.__setitem__("a", w)))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(b.exclusive("stream", body("b"), lambda w: standby.__setitem__("b", w)))
    try:
        await asyncio.sleep(1.5)  # more than two leases: renewed by a, b still waiting
        assert (running, standby) == (["a"], {"a": False, "b": True})
        first.cancel()  # a stops cleanly: its lease is released at once
        for _ in range(60):
            if running == ["a", "b"]:
                break
            await asyncio.sleep(0.05)
        assert running == ["a", "b"] and standby["b"] is False
    finally:
        for task in (first, second):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await a.redis.aclose()
        await b.redis.aclose()


async def test_a_holder_whose_lease_was_taken_stops(redis_url):
    prefix = fresh_prefix()
    a = shared(redis_url, prefix, lease=0.6)
    stopped = asyncio.Event()

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    task = asyncio.create_task(a.exclusive("stream", run, lambda _w: None))
    try:
        await asyncio.sleep(0.1)
        await a.redis.set(prefix + "lease:stream", "someone-else")  # e.g. it paused past its ttl
        async with asyncio.timeout(2):
            await stopped.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await a.redis.aclose()


async def test_installation_tokens_are_shared_by_the_fleet(tmp_path, redis_url):
    """Two processes' GitHub platforms, one token exchange (POST /app/installations/{id}/access_tokens)."""
    private_pem, _public = generate_app_key()
    key_file = tmp_path / "app.pem"
    key_file.write_bytes(private_pem)
    prefix = fresh_prefix()
    async with FakeGitHub(app_id=4242, app_private_key_pem=private_pem) as gh:
        installation = 77
        gh.add_installation(installation, ["Codertocat/Hello-World"])
        settings = GitHubSettings(api_url=gh.url, app_id=4242, private_key_file=key_file)
        platforms = [GitHubPlatform(settings) for _ in range(2)]
        stores = [shared(redis_url, prefix) for _ in platforms]
        try:
            for platform, store in zip(platforms, stores, strict=True):
                platform.share(store)
            tokens = [await p.installation_token(installation) for p in platforms]
        finally:
            for platform, store in zip(platforms, stores, strict=True):
                await platform.close()
                await store.redis.aclose()
    assert tokens[0] == tokens[1] and len(gh.token_exchanges) == 1


def test_the_result_cache_in_redis_answers_any_worker_for_the_same_bytes_only(redis_url):
    prefix = "t" + fresh_prefix() + "cache:"
    one, two = RedisResultCache(redis_url, prefix=prefix), RedisResultCache(redis_url, prefix=prefix)
    finding = Finding("bandit", "B602", "a.py", 3, 3, "shell=True", Severity.HIGH, Severity.HIGH, {})
    try:
        one.put_many("bandit-1.9|rules", {"a.py": (b"import os\n", FileResult([finding], []))})
        hit = two.get_many("bandit-1.9|rules", {"a.py": b"import os\n"})
        assert [f.rule_id for f in hit["a.py"].findings] == ["B602"]
        assert two.get_many("bandit-1.9|rules", {"a.py": b"import sys\n"}) == {}  # other bytes
        assert two.get_many("bandit-2.0|rules", {"a.py": b"import os\n"}) == {}  # other analyzer
        assert (two.hits, two.misses) == (1, 2) and len(two) == 1
    finally:
        one.close()
        two.close()


async def test_rescan_limits_count_for_the_whole_fleet(redis_url):
    """Two web processes behind a load balancer must not each allow the per-change limit: nobody
    gets twice the rescans (or twice the refusal answers) by being routed to another process."""
    from bot.platforms.commands import CommandLimits

    prefix = fresh_prefix()
    stores = [shared(redis_url, prefix), shared(redis_url, prefix)]
    a, b = CommandLimits(per_change=2, per_user=20), CommandLimits(per_change=2, per_user=20)
    a.shared, b.shared = stores
    try:
        assert await a.admit("k", "mallory") is None
        assert await b.admit("k", "mallory") is None
        refused = await a.admit("k", "mallory")
        assert refused is not None and "rescanned 2 times" in refused
        assert await b.admit("k", "mallory") is not None
        assert await a.admit("other", "mallory") is None  # another change has its own count
        assert [await a.answer_now("k", "mallory"), await b.answer_now("k", "mallory")] == [True, False]
        keys = [k async for k in stores[0].redis.scan_iter(prefix + "rate:*")]
        assert keys and [k for k in keys if await stores[0].redis.pttl(k) <= 0] == []  # none kept forever
    finally:
        for store in stores:
            await store.redis.aclose()


async def test_triage_decisions_in_redis_hold_what_the_sqlite_store_holds(tmp_path, redis_url, monkeypatch):
    """An /ignore carried out by one web process must be honoured by every worker: with a queue
    URL the triage store is Redis; the SQLite store's own test runs on it unchanged."""
    import tests.test_triage as triage_tests
    from bot.triage_store import open_store
    from bot.triage_store_redis import RedisTriageStore

    chosen = open_store(tmp_path, redis_url)
    assert isinstance(chosen, RedisTriageStore)
    chosen.close()
    prefix = fresh_prefix()
    monkeypatch.setattr(triage_tests, "open_store", lambda _data_dir: RedisTriageStore(redis_url, prefix))
    await triage_tests.test_the_store_keeps_decisions_and_an_append_only_audit(tmp_path)

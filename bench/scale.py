"""Scale-out figures: queue overhead per job (SQLite vs Redis, and the Redis job libraries that
were candidates), and reviews per minute with 1, 2 and 3 worker processes on one Redis.

Run by hand from the repository root (it starts its own redis-server on a loopback port)::

    PYTHONPATH=. .venv/bin/python bench/scale.py queue [--jobs 2000]
    PYTHONPATH=. .venv/bin/python bench/scale.py reviews [--prs 24] [--workers 1,2,3]
    # arq pins redis-py < 6, so it is measured from a venv of its own:
    PYTHONPATH=. /tmp/arqenv/bin/python bench/scale.py queue --only arq

``queue``: N no-op jobs through each queue, one producer then one consumer in one process, so
the figure is the queue's own cost per job (enqueue; claim + finish), nothing else. Candidates
that are not installed are skipped. ``reviews``: a burst of distinct pull requests (each with a
line of its own, so the result cache cannot answer) through one ``--role web`` and k ``--role
worker`` processes (one review at a time each) against the fake GitHub; also the embedded queue
(one ``serve``, ``server.workers`` = k). Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.platforms.base import JobRequest
from bot.server.queue import JobQueue
from tests.redis_server import fresh_prefix, start_redis

Result = tuple[float, float]  # seconds per job: enqueue, consume (claim + finish)


async def bench_sqlite(url: str, n: int, work: Path) -> Result:
    q = JobQueue(work / f"bench-{time.monotonic_ns()}.sqlite3")
    return await _ours(q, n)


async def bench_redis_ours(url: str, n: int, work: Path) -> Result:
    from bot.server.redis_queue import RedisJobQueue

    q = RedisJobQueue(url, prefix=fresh_prefix())
    return await _ours(q, n)


async def _ours(q, n: int) -> Result:
    try:
        started = time.perf_counter()
        for i in range(n):
            await q.enqueue(
                "github", JobRequest("review", f"github:o/r#{i}", {"revision": str(i)}, True), f"d{i}"
            )
        enqueued = time.perf_counter()
        done = 0
        while (job := await q.claim()) is not None:
            await q.finish(job.id, "done")
            done += 1
        consumed = time.perf_counter()
        assert done == n, (done, n)
        return (enqueued - started) / n, (consumed - enqueued) / n
    finally:
        await q.aclose()


async def bench_streams(url: str, n: int, work: Path) -> Result:
    """The floor of a Streams consumer group design: XADD; XREADGROUP + XACK (no supersession,
    no de-duplication, no delayed retries: those would come on top)."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    stream, group = fresh_prefix() + "s", "workers"
    try:
        await r.xgroup_create(stream, group, id="0", mkstream=True)
        started = time.perf_counter()
        for i in range(n):
            await r.xadd(stream, {"key": f"github:o/r#{i}", "payload": "{}"})
        enqueued = time.perf_counter()
        done = 0
        while done < n:
            got = await r.xreadgroup(group, "c1", {stream: ">"}, count=1)
            for _name, messages in got:
                for message_id, _fields in messages:
                    await r.xack(stream, group, message_id)
                    done += 1
        consumed = time.perf_counter()
        return (enqueued - started) / n, (consumed - enqueued) / n
    finally:
        await r.aclose()


async def bench_arq(url: str, n: int, work: Path, max_jobs: int = 1) -> Result:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    done = 0

    async def noop(ctx) -> None:
        nonlocal done
        done += 1

    settings = RedisSettings.from_dsn(url.rsplit("/", 1)[0] + "/5")
    pool = await create_pool(settings)
    try:
        await pool.flushdb()
        started = time.perf_counter()
        for i in range(n):
            await pool.enqueue_job("noop", _job_id=f"d{i}")  # its de-duplication: one job per id
        enqueued = time.perf_counter()
        worker = Worker(functions=[func(noop, name="noop")], redis_settings=settings, burst=True, handle_signals=False,
                        max_jobs=max_jobs, poll_delay=0.01, keep_result=0)  # fmt: skip
        await worker.async_run()
        await worker.close()
        consumed = time.perf_counter()
        assert done == n, (done, n)
        return (enqueued - started) / n, (consumed - enqueued) / n
    finally:
        await pool.aclose()


async def bench_taskiq(url: str, n: int, work: Path) -> Result:
    from taskiq.receiver import Receiver
    from taskiq_redis import RedisStreamBroker

    broker = RedisStreamBroker(url, queue_name=fresh_prefix() + "taskiq")
    finished = asyncio.Event()
    done = 0

    @broker.task
    async def noop() -> None:
        nonlocal done
        done += 1
        if done == n:
            finished.set()

    await broker.startup()
    try:
        started = time.perf_counter()
        for _ in range(n):
            await noop.kiq()
        enqueued = time.perf_counter()
        receiver = Receiver(broker, run_startup=False, max_async_tasks=1)
        listening = asyncio.create_task(receiver.listen(finished))
        await asyncio.wait_for(finished.wait(), timeout=600)
        consumed = time.perf_counter()
        listening.cancel()
        return (enqueued - started) / n, (consumed - enqueued) / n
    finally:
        await broker.shutdown()


QUEUES: dict[str, Callable[[str, int, Path], Awaitable[Result]]] = {
    "sqlite (embedded, ours)": bench_sqlite,
    "redis (redis-py + Lua, ours)": bench_redis_ours,
    "redis streams floor (XADD/XREADGROUP/XACK)": bench_streams,
    "arq 0.28 (max_jobs=1, poll_delay=10 ms)": bench_arq,
    "arq 0.28 (max_jobs=10)": lambda url, n, work: bench_arq(url, n, work, max_jobs=10),
    "taskiq-redis (RedisStreamBroker)": bench_taskiq,
}


async def run_queue(n: int, only: str | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        proc, url = start_redis(work)
        rows = []
        try:
            for name, bench in QUEUES.items():
                if only and only not in name:
                    continue
                try:
                    enqueue, consume = await bench(url, n, work)
                except ImportError as exc:
                    print(f"skipped {name}: {exc}", file=sys.stderr)
                    continue
                rows.append((name, enqueue, consume))
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"queue overhead per job, {n} no-op jobs, one producer then one consumer, loopback Redis 7.0, 2 cores"
    )
    print(f"{'queue':<46}{'enqueue':>12}{'claim+finish':>14}{'total':>10}")
    print("-" * 82)
    for name, enqueue, consume in rows:
        print(
            f"{name:<46}{enqueue * 1e3:>10.3f}ms{consume * 1e3:>12.3f}ms{(enqueue + consume) * 1e3:>8.2f}ms"
        )
    return 0


async def run_reviews(prs: int, counts: list[int]) -> int:
    from bench.service import Stamped, _tree, opened_payload
    from tests.fakes.github import FakeGitHub
    from tests.service import ServeProcess, github_serve_setup, post_github

    token = "ghp_scale_bench_token"
    base, head = _tree("base"), _tree("head")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        proc, url = start_redis(work)
        try:
            runs = [("redis", k) for k in counts] + [("embedded", k) for k in counts]
            for mode, k in runs:
                numbers = list(range(1000 * (len(rows) + 1), 1000 * (len(rows) + 1) + prs))
                async with FakeGitHub(token=token) as gh:
                    reviews = Stamped()
                    gh.reviews = reviews
                    for n in numbers:
                        mine = {p: data + f"\n# pull request {n}\n".encode() for p, data in head.items()}
                        gh.add_pull_from_payload(opened_payload(n), base, mine)
                    run_dir = work / f"{mode}-{k}"
                    run_dir.mkdir()
                    server = {"workers": 1 if mode == "redis" else k}
                    config, env = github_serve_setup(run_dir, gh.url, token, "scale", server=server)
                    if mode == "redis":
                        env["PATCHWARDEN_QUEUE_URL"] = url.rsplit("/", 1)[0] + f"/{10 + len(rows)}"
                        procs = [ServeProcess(config, env, "--role", "web", log_name="web.log")]
                        procs += [
                            ServeProcess(config, env, "--role", "worker", log_name=f"w{i}.log")
                            for i in range(k)
                        ]
                    else:
                        procs = [ServeProcess(config, env, log_name="all.log")]
                    try:
                        for p in procs:
                            await p.wait_ready(60)
                        started = time.monotonic()
                        await asyncio.gather(
                            *(
                                post_github(procs[0].url, "pull_request", opened_payload(n), f"s-{n}")
                                for n in numbers
                            )
                        )
                        deadline = started + 600
                        while len(reviews) < prs and time.monotonic() < deadline:
                            await asyncio.sleep(0.05)
                        elapsed = time.monotonic() - started
                    finally:
                        for p in procs:
                            p.stop()
                rows.append((mode, k, len(reviews), elapsed))
                print(f"{mode} k={k}: {len(reviews)} reviews in {elapsed:.1f} s", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"reviews per minute, burst of {prs} distinct small pull requests (the typical change), 2 cores")
    print(f"{'queue':<12}{'review slots':>14}{'processes':>12}{'reviews':>9}{'wall':>9}{'reviews/min':>13}")
    print("-" * 69)
    for mode, k, done, elapsed in rows:
        processes = f"1+{k}" if mode == "redis" else "1"
        print(f"{mode:<12}{k:>14}{processes:>12}{done:>9}{elapsed:>8.1f}s{done / elapsed * 60:>13.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    queue = sub.add_parser("queue")
    queue.add_argument("--jobs", type=int, default=2000)
    queue.add_argument("--only", help="a substring of the queue's name")
    reviews = sub.add_parser("reviews")
    reviews.add_argument("--prs", type=int, default=24)
    reviews.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    if args.what == "queue":
        return asyncio.run(run_queue(args.jobs, args.only))
    return asyncio.run(run_reviews(args.prs, [int(k) for k in args.workers.split(",")]))


if __name__ == "__main__":
    sys.exit(main())

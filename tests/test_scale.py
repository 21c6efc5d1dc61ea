"""Scale-out: many `patchwarden serve` processes sharing one real redis-server, against the fakes.

The contract is the single process's, across processes: every acknowledged event reviewed (0 lost),
no head reviewed twice (0 duplicates), a superseded head never published after its successor, a
worker killed with SIGKILL mid-burst costs nothing but time, GitHub's secondary limit is kept by
the fleet as a whole, and exactly one process reads the Gerrit stream, with a standby taking over
(and catching up) when it dies. The same burst runs on the embedded SQLite queue (one process,
killed and restarted). Every wait is bounded; loopback only.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, defaultdict

import aiohttp
import pytest
import redis.asyncio

from tests.fakes.github import FakeGitHub
from tests.service import ServeProcess, github_serve_setup, post_github, wait_until
from tests.test_github_e2e import HEAD, SECRET, TOKEN
from tests.test_reliability import add_pulls, post_all

pytestmark = pytest.mark.slow

PULLS = range(200, 230)  # a burst of 30 pull requests
PUSHED = PULLS[::6]  # 5 of them get two more pushes in quick succession
LIMIT = (10, 2.0)  # a scaled-down secondary limit: 10 content-creating requests in any 2 s


def head_of(number: int, push: int) -> str:
    return hashlib.sha1(f"head-{number}-{push}".encode()).hexdigest()


async def queue_of(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
        return (await resp.json())["queue"]


async def settled(url: str, done_at_least: int) -> bool:
    counts = await queue_of(url)
    return not counts.get("pending") and not counts.get("running") and counts.get("done", 0) >= done_at_least


async def push_twice(gh: FakeGitHub, url: str, payloads: dict[int, dict]) -> list[int]:
    """Two synchronize events per pull in ``PUSHED``, each a new head, sent back to back."""
    statuses = []
    for push in (1, 2):
        for n in PUSHED:
            sha = head_of(n, push)
            gh.push("Codertocat", "Hello-World", n, {"net.py": HEAD}, sha)
            payload = {**payloads[n], "action": "synchronize"}
            payload["pull_request"] = {
                **payload["pull_request"],
                "head": {**payload["pull_request"]["head"], "sha": sha},
            }
            before = head_of(n, 1) if push == 2 else payloads[n]["pull_request"]["head"]["sha"]
            payload["before"], payload["after"] = before, sha
            status, _ = await post_github(url, "pull_request", payload, f"sync-{n}-{push}")
            statuses.append(status)
    return statuses


def synchronize(opened: dict, sha: str) -> dict:
    """The ``synchronize`` event of a push of ``sha`` to the pull request ``opened`` announced."""
    pull = opened["pull_request"]
    before = pull["head"]["sha"]
    return {**opened, "action": "synchronize", "before": before, "after": sha,
            "pull_request": {**pull, "head": {**pull["head"], "sha": sha}}}  # fmt: skip


def check_burst(gh: FakeGitHub) -> dict[str, object]:
    """0 lost, 0 duplicates, no superseded head published after its successor, the limit kept."""
    by_pull: dict[int, list[str]] = defaultdict(list)
    for review in gh.reviews:
        by_pull[review["pull_number"]].append(review["commit_id"])
    latest = {
        n: head_of(n, 2) if n in PUSHED else gh.pull("Codertocat", "Hello-World", n).head_sha for n in PULLS
    }
    lost = [n for n in PULLS if latest[n] not in by_pull[n]]
    duplicated = [(n, sha) for n, shas in by_pull.items() for sha, k in Counter(shas).items() if k > 1]
    stale_after = [n for n, shas in by_pull.items() if latest[n] in shas and shas[-1] != latest[n]]
    refused = [r["path"] for r in gh.requests if r["status"] == 403 and "check-runs" not in r["path"]]
    for review in gh.reviews:  # every review is the whole one: both findings inline
        assert sorted(c["line"] for c in review["comments"]) == [3, 12], review["pull_number"]
    result = {
        "lost": lost,
        "duplicated": duplicated,
        "stale after newest": stale_after,
        "refused writes": refused,
    }
    print(f"\nreviews {len(gh.reviews)} of {len(PULLS)} pulls + {2 * len(PUSHED)} pushes: {result}")
    return result


@pytest.fixture
async def github():
    async with FakeGitHub(token=TOKEN, content_creation_limits=[(LIMIT[1], LIMIT[0])]) as gh:
        yield gh


async def running_owner(store, number: int) -> str | None:
    """host:pid of the worker running the job of pull request ``number`` (Redis queue records)."""
    async for name in store.scan_iter("patchwarden:job:*"):
        job = await store.hgetall(name)
        if job.get("state") == "running" and job.get("key", "").endswith(f"#{number}"):
            return job.get("owner")
    return None


def fleet_setup(tmp_path, gh: FakeGitHub, name: str, queue_url: str | None):
    server = {"retry_base_delay": 0.2, "workers": 1, "job_lease_seconds": 3, "stream_lease_seconds": 2}
    config, env = github_serve_setup(
        tmp_path, gh.url, TOKEN, name, server=server,
        github={"bot_login": gh.bot_login, "write_limits": [list(LIMIT)]},
    )  # fmt: skip
    if queue_url:
        env["PATCHWARDEN_QUEUE_URL"] = queue_url
    return config, env


async def test_burst_on_one_web_and_three_workers_with_a_worker_killed(tmp_path, github, redis_url):
    payloads = {p["number"]: p for p in add_pulls(github, PULLS)}
    queue_url = redis_url.rsplit("/", 1)[0] + "/1"
    config, env = fleet_setup(tmp_path, github, "fleet", queue_url)
    web = ServeProcess(config, env, "--role", "web", log_name="web.log")
    workers = [ServeProcess(config, env, "--role", "worker", log_name=f"worker{i}.log") for i in range(3)]
    # The worst moment to die, mid-burst: the first review is applied, its answer never comes back.
    release = asyncio.Event()
    github.lose_answer("POST", r"/pulls/\d+/reviews$", status=None, count=1, hold=release)
    store = redis.asyncio.Redis.from_url(queue_url, decode_responses=True)
    try:
        for process in (web, *workers):
            await process.wait_ready()
        statuses = await post_all(web.url, list(payloads.values()))
        statuses += await push_twice(github, web.url, payloads)
        await wait_until(lambda: github.reviews, timeout=120, what="the held review")
        held = github.reviews[0]["pull_number"]
        owner = await wait_until(lambda: running_owner(store, held), timeout=10, what="its worker")
        victim = next(w for w in workers if owner.endswith(f":{w.proc.pid}"))
        victim.kill()  # its job goes to another worker once the lease runs out
        release.set()
        await wait_until(lambda: settled(web.url, len(PULLS)), timeout=240, what="the burst to finish")
        counts = await queue_of(web.url)
    finally:
        release.set()
        await store.aclose()
        for process in (web, *workers):
            process.stop()
    took_back = "".join(w.log.read_text() for w in workers if w is not victim)
    print(f"\nwebhooks {Counter(statuses)}, jobs {counts}, killed the worker of #{held}")
    assert "took back 1 job(s)" in took_back
    assert set(statuses) == {202}
    assert check_burst(github) == {
        "lost": [],
        "duplicated": [],
        "stale after newest": [],
        "refused writes": [],
    }
    assert [r["id"] for r in github.check_runs if r["status"] != "completed"] == []


async def test_the_same_burst_on_the_embedded_queue_killed_and_restarted(tmp_path, github):
    payloads = {p["number"]: p for p in add_pulls(github, PULLS)}
    config, env = fleet_setup(tmp_path, github, "single", None)
    first = ServeProcess(config, env, log_name="first.log")
    try:
        await first.wait_ready()
        statuses = await post_all(first.url, list(payloads.values()))
        statuses += await push_twice(github, first.url, payloads)
        await wait_until(lambda: len(github.reviews) >= 5, timeout=120, what="the first reviews")
        first.kill()
    finally:
        first.stop()
    # One process paces in memory: a restarted one does not know the killed one's last writes.
    await asyncio.sleep(LIMIT[1] * 1.1)
    second = ServeProcess(config, env, log_name="second.log")
    try:
        await second.wait_ready()
        await wait_until(lambda: settled(second.url, len(PULLS)), timeout=240, what="the burst to finish")
    finally:
        second.stop()
    assert set(statuses) == {202}
    assert check_burst(github) == {
        "lost": [],
        "duplicated": [],
        "stale after newest": [],
        "refused writes": [],
    }


async def test_web_answers_503_while_redis_is_down_and_loses_nothing(tmp_path, github):
    """Redis unreachable: a webhook gets 503 (with Retry-After), never a 500, and is not
    acknowledged, so the sender's redelivery is what queues it once Redis is back."""
    from tests.redis_server import start_redis

    add_pulls(github, range(300, 301))
    proc, url = start_redis(tmp_path)
    config, env = fleet_setup(tmp_path, github, "down", url)
    web = ServeProcess(config, env, "--role", "web", log_name="web.log")
    try:
        await web.wait_ready()
        proc.kill()
        proc.wait(10)
        payload = add_pulls(github, range(301, 302))[0]
        async with aiohttp.ClientSession() as session:
            status, answer = await post_github(web.url, "pull_request", payload, "d-down")
            async with session.get(web.url + "/healthz") as resp:
                health = resp.status
        assert (status, health) == (503, 503), answer
        assert "unavailable" in answer["error"]
    finally:
        web.stop()
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in web.log.read_text()


async def test_gerrit_stream_has_one_reader_and_a_standby_takes_over(tmp_path, redis_url):
    """Two web processes, one stream reader (the lease holder); kill -9 of the holder: the other
    takes over within the lease and catches up on what was uploaded meanwhile."""
    from tests.fakes.gerrit import FakeGerrit, generate_ssh_keypair
    from tests.test_gerrit_e2e import BASE as GERRIT_BASE
    from tests.test_gerrit_e2e import HEAD as GERRIT_HEAD
    from tests.test_gerrit_e2e import PASSWORD, PROJECT, USER

    async with FakeGerrit(user=USER, http_password=PASSWORD) as g:
        key_path, public = generate_ssh_keypair(tmp_path / "ssh")
        g.authorize_ssh_key(public)
        (tmp_path / "ssh" / "known_hosts").write_text(g.known_hosts_line() + "\n")
        g.set_branch_file(PROJECT, "master", "nova/volume.py", GERRIT_BASE)
        owner = g.add_account("Jane Dev", "jdev", "jane@example.com")
        config = tmp_path / "gerrit.yaml"
        config.write_text(
            "server: {retry_base_delay: 0.2, workers: 1, job_lease_seconds: 3, stream_lease_seconds: 2}\n"
        )
        env = {
            "PATCHWARDEN_QUEUE_URL": redis_url.rsplit("/", 1)[0] + "/2",
            "PATCHWARDEN_GERRIT_URL": g.url, "PATCHWARDEN_GERRIT_USER": USER,
            "PATCHWARDEN_GERRIT_HTTP_PASSWORD": PASSWORD, "PATCHWARDEN_GERRIT_SSH_HOST": "127.0.0.1",
            "PATCHWARDEN_GERRIT_SSH_PORT": str(g.ssh_port), "PATCHWARDEN_GERRIT_SSH_KEY_FILE": str(key_path),
            "PATCHWARDEN_GERRIT_SSH_KNOWN_HOSTS": str(tmp_path / "ssh" / "known_hosts"),
            "PATCHWARDEN_DATA_DIR": str(tmp_path / "data"),
        }  # fmt: skip
        webs = [ServeProcess(config, env, "--role", "web", log_name=f"web{i}.log") for i in range(2)]
        worker = ServeProcess(config, env, "--role", "worker", log_name="worker.log")
        try:
            for process in (*webs, worker):
                await process.wait_ready()
            await g.wait_for_stream(1, timeout=20)
            await asyncio.sleep(2.5)  # longer than a lease: the standby is still waiting
            assert g.stream_count == 1
            first = g.create_change(PROJECT, "master", owner, "one", files={"nova/volume.py": GERRIT_HEAD})
            await wait_until(lambda: any(r.change == first.number for r in g.reviews), timeout=60,
                             what="the first change's review")  # fmt: skip
            holder = next(w for w in webs if "holding the fleet's lease" in w.log.read_text())
            standby = next(w for w in webs if w is not holder)
            holder.kill()
            # Uploaded while no one reads the stream: only the catch-up can find it.
            second = g.create_change(PROJECT, "master", owner, "two", files={"nova/volume.py": GERRIT_HEAD})
            await wait_until(lambda: "holding the fleet's lease" in standby.log.read_text(), timeout=30,
                             what="the standby to take the lease")  # fmt: skip
            await g.wait_for_stream(1, timeout=10)
            await wait_until(lambda: any(r.change == second.number for r in g.reviews), timeout=60,
                             what="the caught-up change's review")  # fmt: skip
            await wait_until(lambda: settled(standby.url, 2), timeout=60, what="the queue to settle")
        finally:
            for process in (*webs, worker):
                process.stop()
        per_change = Counter(r.change for r in g.reviews)
        assert per_change == {first.number: 1, second.number: 1}, per_change
        assert "catch-up" in standby.log.read_text()


async def test_a_push_received_by_the_web_process_cancels_the_scan_running_in_a_worker(tmp_path, redis_url):
    """The newer push reaches a web process; the scan of the older head runs in a worker process:
    the worker is told through Redis, closes its check run as cancelled and never publishes it."""
    async with FakeGitHub(token=TOKEN, token_kind="installation", content_creation_limits=()) as gh:
        (payload,) = add_pulls(gh, range(400, 401))
        slow_files = gh.hold("GET", r"/pulls/400/files$")
        config, env = fleet_setup(tmp_path, gh, "cancel", redis_url.rsplit("/", 1)[0] + "/3")
        web = ServeProcess(config, env, "--role", "web", log_name="web.log")
        worker = ServeProcess(config, env, "--role", "worker", log_name="worker.log")
        try:
            for process in (web, worker):
                await process.wait_ready()
            assert (await post_github(web.url, "pull_request", payload, "c-1"))[0] == 202
            await wait_until(lambda: gh.check_runs, timeout=60, what="the first scan to begin")
            newer = head_of(400, 1)
            gh.push("Codertocat", "Hello-World", 400, {"net.py": HEAD}, newer)
            sync = synchronize(payload, newer)
            assert (await post_github(web.url, "pull_request", sync, "c-2"))[0] == 202
            await wait_until(lambda: gh.check_runs[0]["status"] == "completed", timeout=30, what="the cancel")
            slow_files.set()
            await wait_until(lambda: settled(web.url, 1), timeout=60, what="the newer head's review")
            counts = await queue_of(web.url)
        finally:
            slow_files.set()
            for process in (web, worker):
                process.stop()
    assert counts == {"done": 1, "superseded": 1}
    assert [r["commit_id"] for r in gh.reviews] == [newer]
    first = gh.check_runs[0]
    assert first["conclusion"] == "cancelled" and "superseded" in first["output"]["summary"]


async def test_a_scan_killed_in_a_worker_then_superseded_through_the_web_process_has_its_check_run_closed(
    tmp_path, redis_url
):
    """``kill -9`` of the worker mid-scan (its check run ``in_progress``), then a newer push
    reaches the web process while the dead worker still holds the job's lease: the next worker
    finds the old job superseded and closes the check run its killed attempt opened (cancelled),
    and reviews the newer head once."""
    async with FakeGitHub(token=TOKEN, token_kind="installation", content_creation_limits=()) as gh:
        (payload,) = add_pulls(gh, range(420, 421))
        slow_files = gh.hold("GET", r"/pulls/420/files$")
        config, env = fleet_setup(tmp_path, gh, "killed", redis_url.rsplit("/", 1)[0] + "/5")
        web = ServeProcess(config, env, "--role", "web", log_name="web.log")
        doomed = ServeProcess(config, env, "--role", "worker", log_name="doomed.log")
        successor = None
        try:
            for process in (web, doomed):
                await process.wait_ready()
            assert (await post_github(web.url, "pull_request", payload, "k-1"))[0] == 202
            await wait_until(lambda: gh.check_runs, timeout=60, what="the first scan to begin")
            doomed.kill()
            slow_files.set()
            newer = head_of(420, 1)
            gh.push("Codertocat", "Hello-World", 420, {"net.py": HEAD}, newer)
            sync = synchronize(payload, newer)
            assert (await post_github(web.url, "pull_request", sync, "k-2"))[0] == 202
            assert gh.check_runs[0]["status"] == "in_progress"
            successor = ServeProcess(config, env, "--role", "worker", log_name="successor.log")
            await successor.wait_ready()
            await wait_until(lambda: settled(web.url, 1), timeout=60, what="the newer head's review")
            await wait_until(lambda: gh.check_runs[0]["status"] == "completed", timeout=20, what="the close")
            counts = await queue_of(web.url)
        finally:
            slow_files.set()
            for process in (web, doomed, successor):
                if process is not None:
                    process.stop()
    assert counts == {"done": 1, "superseded": 1}
    assert [r["commit_id"] for r in gh.reviews] == [newer]
    first = gh.check_runs[0]
    assert first["conclusion"] == "cancelled" and "Superseded" in first["output"]["summary"], first
    assert [r["id"] for r in gh.check_runs if r["status"] != "completed"] == []


async def test_a_worker_whose_job_was_taken_back_stops_and_leaves_the_scan_to_the_new_holder(
    tmp_path, redis_url
):
    """A worker stalled past its lease (here: the job's claim moved on under it, as another
    worker's claim does) stops its scan without closing the check run the new holder carries on
    and without recording an outcome for a job that is no longer its own."""
    from tests.service import make_settings, running_service

    async with FakeGitHub(token=TOKEN, token_kind="installation", content_creation_limits=()) as gh:
        (payload,) = add_pulls(gh, range(410, 411))
        slow_files = gh.hold("GET", r"/pulls/410/files$")
        queue_url = redis_url.rsplit("/", 1)[0] + "/4"
        settings = make_settings(tmp_path, {
            "github": {"api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_limits": [],
                       "bot_login": gh.bot_login},
            "server": {"queue_url": queue_url, "workers": 1, "retry_base_delay": 0.2},
        })  # fmt: skip
        store = redis.asyncio.Redis.from_url(queue_url, decode_responses=True)
        try:
            async with running_service(settings) as (url, service):
                assert (await post_github(url, "pull_request", payload, "t-1"))[0] == 202
                await wait_until(lambda: gh.check_runs, timeout=60, what="the scan to begin")
                (job,) = await service.queue.jobs("running")
                await store.hincrby(f"patchwarden:job:{job['id']}", "attempts", 1)  # another's claim now
                await wait_until(lambda: not service.workers._running, timeout=10, what="the scan to stop")
                slow_files.set()
                jobs = await service.queue.jobs()
        finally:
            slow_files.set()
            await store.aclose()
    assert [j["state"] for j in jobs] == ["running"]  # the new holder's to finish
    assert gh.check_runs[0]["status"] == "in_progress" and gh.reviews == []

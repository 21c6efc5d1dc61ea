"""Reliability under faults: bursts against strict fakes that fail, lose answers, and a service
killed with SIGKILL at the worst moments. Every loop is bounded in count and time; loopback only.

What each test asserts is the contract a review bot owes its users: every acknowledged event is
reviewed exactly once (0 lost, 0 duplicated), no check run is left "in progress", and the
service answers no webhook with a 5xx. The figures (printed with ``-s``) go into the notes.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import re
from collections import Counter

import aiohttp
import pytest

from tests.fakes.gerrit import FakeGerrit, generate_ssh_keypair
from tests.fakes.github import FakeGitHub
from tests.service import (
    ServeProcess,
    fixture,
    make_settings,
    post_github,
    running_service,
    wait_idle,
    wait_until,
)
from tests.test_github_e2e import BASE, HEAD, REPO, SECRET, TOKEN, pr_comment_payload, serve_setup

pytestmark = pytest.mark.slow


def pr_payload(number: int) -> dict:
    """pull_request.opened for PR ``number`` with a head of its own."""
    payload = copy.deepcopy(fixture("github/pull_request.opened.2.json"))
    pr = payload["pull_request"]
    payload["number"] = pr["number"] = number
    pr["head"]["sha"] = hashlib.sha1(f"head-{number}".encode()).hexdigest()
    pr["head"]["ref"] = f"topic-{number}"
    for key in ("url", "html_url", "issue_url", "comments_url", "review_comments_url", "commits_url"):
        if isinstance(pr.get(key), str):
            pr[key] = pr[key].replace("/2", f"/{number}")
    return payload


def add_pulls(gh: FakeGitHub, numbers: range) -> list[dict]:
    payloads = [pr_payload(n) for n in numbers]
    for payload in payloads:
        gh.add_pull_from_payload(payload, {"net.py": BASE}, {"net.py": HEAD})
    return payloads


def reviews_per_pull(gh: FakeGitHub) -> Counter:
    return Counter(r["pull_number"] for r in gh.reviews)


def assert_exactly_once(gh: FakeGitHub, numbers: range) -> None:
    per_pull = reviews_per_pull(gh)
    lost = [n for n in numbers if per_pull[n] == 0]
    duplicated = [n for n in numbers if per_pull[n] > 1]
    open_runs = [r["id"] for r in gh.check_runs if r["status"] != "completed"]
    print(
        f"\nreviews {sum(per_pull.values())}, lost {lost}, duplicated {duplicated}, open check runs {open_runs}"
    )
    assert (lost, duplicated, open_runs) == ([], [], [])
    for r in gh.reviews:  # every review is the whole one: both findings inline
        assert sorted(c["line"] for c in r["comments"]) == [3, 12], r["pull_number"]


def settings_for(tmp_path, gh: FakeGitHub, **server):
    github = {"api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_limits": [],
              "bot_login": gh.bot_login}  # fmt: skip
    return make_settings(tmp_path, {"github": github, "server": {"data_dir": str(tmp_path / "data"),
                                                                 "retry_base_delay": 0.1, **server}})  # fmt: skip


async def post_all(
    url: str, payloads: list[dict], event: str = "pull_request", prefix: str = "d"
) -> list[int]:
    statuses = []
    for i, payload in enumerate(payloads):
        status, _ = await post_github(url, event, payload, f"{prefix}-{i}")
        statuses.append(status)
    return statuses


@pytest.fixture
async def github():
    """Secondary limits off on both sides: these tests are about faults (the pacing against the
    documented limits has tests of its own in test_github_e2e.py)."""
    async with FakeGitHub(token=TOKEN, token_kind="installation", content_creation_limits=()) as gh:
        yield gh


async def test_burst_of_20_with_30_percent_5xx_and_429_and_runs_of_five_429s(tmp_path, github):
    numbers = range(10, 30)
    payloads = add_pulls(github, numbers)
    github.chaos(fail_rate=0.3, seed=7)
    for n in (11, 17):  # and runs of five 429s in a row on one read
        github.fail_next("GET", rf"/pulls/{n}/files$", 429, headers={"Retry-After": "0"}, count=5)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        statuses = await post_all(url, payloads)
        counts = await wait_idle(service, timeout=240)
    print(f"\nwebhooks {Counter(statuses)}, injected faults {github.chaos_counts}, jobs {counts}")
    assert set(statuses) == {202} and counts == {"done": 20}
    assert github.chaos_counts["failed"] > 20  # the faults really happened
    assert_exactly_once(github, numbers)


async def test_burst_of_20_where_20_percent_of_writes_lose_their_answer(tmp_path, github):
    numbers = range(40, 60)
    payloads = add_pulls(github, numbers)
    github.chaos(fail_rate=0.0, lose_rate=0.2, seed=11)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        statuses = await post_all(url, payloads)
        counts = await wait_idle(service, timeout=240)
    print(f"\nwebhooks {Counter(statuses)}, injected faults {github.chaos_counts}, jobs {counts}")
    assert set(statuses) == {202} and counts == {"done": 20}
    assert github.chaos_counts["lost"] >= 5
    assert_exactly_once(github, numbers)


async def healthz_queue(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
        return (await resp.json())["queue"]


async def idle_after_restart(url: str, total: int) -> bool:
    counts = await healthz_queue(url)
    return not counts.get("pending") and not counts.get("running") and sum(counts.values()) >= total


async def test_kill_9_mid_burst_of_50_and_mid_rescan_burst(tmp_path, github):
    """SIGKILL while a review is applied but its answer has not arrived (the worst moment), with
    more events queued behind it; after the restart every acknowledged event is reviewed once.
    Then the same during a burst of /rescan commands."""
    numbers = range(100, 150)
    payloads = add_pulls(github, numbers)
    config = {"server": {"retry_base_delay": 0.1}, "github": {"write_limits": []}}
    release = asyncio.Event()
    github.lose_answer("POST", r"/pulls/\d+/reviews$", status=None, count=1, hold=release)
    first = ServeProcess(*serve_setup(tmp_path, github, "first", **config))
    try:
        await first.wait_ready()
        statuses = await post_all(first.url, payloads)
        await wait_until(
            lambda: len(github.reviews) >= 3, timeout=120, what="a few reviews, one of them held"
        )
        first.kill()
    finally:
        release.set()
        first.stop()
    killed_at = len(github.reviews)
    second = ServeProcess(*serve_setup(tmp_path, github, "second", **config))
    try:
        await second.wait_ready()
        await wait_until(lambda: idle_after_restart(second.url, 50), timeout=240, what="the burst to finish")
    finally:
        second.stop()
    print(f"\nwebhooks {Counter(statuses)}, reviews when killed {killed_at}")
    assert set(statuses) == {202}
    assert_exactly_once(github, numbers)

    # A burst of /rescan on ten of them, killed again while one rescan review is held.
    rescans = []
    for n in numbers[:10]:
        comment = pr_comment_payload("/rescan", "Codertocat", "OWNER")
        comment["issue"]["number"] = n
        comment["comment"]["id"] = 9000 + n
        github.add_issue_comment_from_payload(comment)
        rescans.append(comment)
    release = asyncio.Event()
    github.lose_answer("POST", r"/pulls/\d+/reviews$", status=502, count=1, hold=release)
    third = ServeProcess(*serve_setup(tmp_path, github, "third", **config))
    try:
        await third.wait_ready()
        statuses = await post_all(third.url, rescans, event="issue_comment", prefix="r")
        await wait_until(lambda: len(github.reviews) >= 51, timeout=120, what="the held rescan review")
        third.kill()
    finally:
        release.set()
        third.stop()
    fourth = ServeProcess(*serve_setup(tmp_path, github, "fourth", **config))
    try:
        await fourth.wait_ready()
        await wait_until(
            lambda: idle_after_restart(fourth.url, 60), timeout=240, what="the rescans to finish"
        )
    finally:
        fourth.stop()
    per_pull = reviews_per_pull(github)
    print(
        f"rescan webhooks {Counter(statuses)}, reviews per rescanned PR {[per_pull[n] for n in numbers[:10]]}"
    )
    assert set(statuses) == {202}
    assert [per_pull[n] for n in numbers[:10]] == [2] * 10 and [per_pull[n] for n in numbers[10:]] == [1] * 40
    assert [r["id"] for r in github.check_runs if r["status"] != "completed"] == []


async def test_a_scan_killed_mid_way_whose_pull_request_closes_before_the_restart_closes_its_check_run(
    tmp_path, github
):
    """SIGKILL mid-scan leaves the check run ``in_progress``; the pull request is closed before the
    service comes back, so the job is skipped on its next attempt: the check run it opened is
    closed (cancelled, with the reason), not left spinning."""
    (payload,) = add_pulls(github, range(160, 161))
    held = github.hold("GET", r"/pulls/160/files$")
    config = {"server": {"retry_base_delay": 0.1}, "github": {"write_limits": []}}
    first = ServeProcess(*serve_setup(tmp_path, github, "first", **config))
    try:
        await first.wait_ready()
        assert (await post_github(first.url, "pull_request", payload, "k-1"))[0] == 202
        await wait_until(lambda: github.check_runs, timeout=60, what="the scan to begin")
        first.kill()
    finally:
        held.set()
        first.stop()
    assert github.check_runs[0]["status"] == "in_progress"
    github.pull("Codertocat", "Hello-World", 160).data["state"] = "closed"
    second = ServeProcess(*serve_setup(tmp_path, github, "second", **config))
    try:
        await second.wait_ready()
        await wait_until(lambda: idle_after_restart(second.url, 1), timeout=60, what="the job to end")
        await wait_until(lambda: github.check_runs[0]["status"] == "completed", timeout=10, what="the close")
    finally:
        second.stop()
    (run,) = github.check_runs
    assert run["conclusion"] == "cancelled" and "is closed" in run["output"]["summary"], run
    assert github.reviews == []


VOLUME = b'''"""Volume helpers."""

import shutil

from nova import utils


def run_hook(cmd):
    utils.execute(cmd, run_as_root=True)
'''


async def test_gerrit_burst_with_5xx_429_and_lost_review_answers(tmp_path):
    """Ten patchsets over the SSH stream while 30 % of REST answers fail and 20 % of the review
    POSTs that Gerrit applied lose their answer: each patchset gets exactly one review."""
    async with FakeGerrit(user="patchwarden", http_password="pw") as g:
        key, public = generate_ssh_keypair(tmp_path / "ssh")
        g.authorize_ssh_key(public)
        (tmp_path / "ssh" / "known_hosts").write_text(g.known_hosts_line() + "\n")
        owner = g.add_account("Jane Dev", "jdev", "jane@example.com")
        g.set_branch_file("openstack/nova", "master", "nova/volume.py", b'"""Volume helpers."""\n')
        settings = make_settings(tmp_path, {
            "server": {"data_dir": str(tmp_path / "data"), "retry_base_delay": 0.1},
            "gerrit": {"url": g.url, "user": "patchwarden", "http_password": "pw", "ssh_host": "127.0.0.1",
                       "ssh_port": g.ssh_port, "ssh_key_file": str(key),
                       "ssh_known_hosts": str(tmp_path / "ssh" / "known_hosts")},
        })  # fmt: skip
        async with running_service(settings) as (_url, service):
            await g.wait_for_stream(1, timeout=10)
            g.chaos(fail_rate=0.3, lose_rate=0.2, seed=3)
            # Random losses over ~10 review POSTs may all miss (0.8**10): two are certain.
            g.lose_answer("POST", r"/review$", status=502)
            g.lose_answer("POST", r"/review$", status=None)
            changes = [
                g.create_change("openstack/nova", "master", owner, f"c{i}", files={"nova/volume.py": VOLUME})
                for i in range(10)
            ]
            await wait_until(
                lambda: all(any(r.change == c.number for r in g.reviews) for c in changes),
                timeout=240,
                what="every review",
            )
            counts = await wait_idle(service, timeout=240)
            g.chaos(0)
        per_change = Counter(r.change for r in g.reviews)
        print(f"\ninjected faults {g.chaos_counts}, jobs {counts}, reviews {dict(per_change)}")
        assert counts == {"done": 10}
        assert g.chaos_counts["failed"] > 10 and g.chaos_counts["lost"] >= 2
        assert [per_change[c.number] for c in changes] == [1] * 10
        for r in g.reviews:
            assert sorted(c["line"] for c in r.input["comments"]["nova/volume.py"]) == [3, 9]


async def test_hostile_change_20_mb_100k_lines_binary_non_utf8(tmp_path, github):
    """A change built to hurt: a 20 MB file (over engine.max_file_bytes: named, never downloaded),
    100,000 lines of Python (reviewed within the analyzers' bounds), binary content at a .py
    path, non-UTF-8 text, a symlink out of the repository. The service stays up, the review
    names every file it skipped, writes nothing outside its workspace and requests nothing
    outside the API paths it means."""
    from tests.fakes.github import Symlink

    # 100,000 lines of ordinary code (12,500 small functions). A file of 100,000 bare module-level
    # assignments is pathological for Semgrep's parser (about 100 s here): analyzer_timeout bounds
    # that case; this one asks for a complete review.
    long_file = (
        b"".join(
            b"def f_%d(x):\n    y = x + %d\n    if y > 3:\n        return y\n    z = [y, x]\n    return len(z)\n\n\n"
            % (i, i)
            for i in range(12_500)
        )
        + b"import os\n"
    )
    head = {
        "net.py": HEAD,
        "huge.py": b"#" * 20_000_000 + b"\n",
        "long.py": long_file,
        "blob.py": b"\x00\xff" * 5000,
        "latin1.py": b"# caf\xe9\nimport os\n",
        "escape.py": Symlink("../../../../etc/passwd"),
    }
    payload = pr_payload(2)
    github.add_pull_from_payload(payload, {"net.py": BASE}, head)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        status, _ = await post_github(url, "pull_request", payload, "d-hostile")
        counts = await wait_idle(service, timeout=240)
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
            healthy = resp.status
    assert (status, counts, healthy) == (202, {"done": 1}, 200)
    (review,) = github.reviews
    summary = review["body"]
    assert "huge.py: not reviewed: 20,000,001 bytes is over the 10,000,000-byte limit" in summary
    assert "blob.py: not reviewed: binary content" in summary
    assert "latin1.py" in summary.split("**Security defects**")[0]  # named as not (fully) analyzed
    assert "escape.py: not reviewed: a symlink" in summary
    lines = {(c["path"], c["line"]) for c in review["comments"]}
    assert ("long.py", 100_001) in lines and ("net.py", 12) in lines  # the unused import at the end
    repo = f"/repos/{REPO}"
    allowed = re.compile(
        rf"^{repo}/(pulls/2(/files|/comments|/reviews)?|contents/.+|check-runs(/\d+)?|git/blobs/[0-9a-f]{{40}}"
        rf"|commits/[0-9a-f]{{40}}/check-runs)$"
    )
    assert [r["path"] for r in github.requests if not allowed.match(r["path"])] == []
    huge_sha = hashlib.sha1(b"blob %d\0" % 20_000_001 + b"#" * 20_000_000 + b"\n").hexdigest()
    assert not any(huge_sha in r["path"] for r in github.requests)
    assert not (tmp_path / "etc").exists() and not any(tmp_path.parent.glob("passwd"))

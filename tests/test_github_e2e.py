"""GitHub end to end: real webhooks (fixtures, signed here) -> real service -> real analyzers ->
real HTTP to the strict fake GitHub API."""

from __future__ import annotations

import asyncio
import copy
import json
import re

import aiohttp
import pytest

from bot.platforms.github import MARKER, NotReviewable, PacedGitHubAPI, Pacer, contents_url
from bot.render import VERDICT_CLEAN
from tests.fakes.github import FakeGitHub, Submodule, Symlink, git_blob_sha
from tests.service import (
    SECRET,
    ServeProcess,
    fixture,
    github_serve_setup,
    make_settings,
    post_github,
    running_service,
    wait_idle,
    wait_until,
)

TOKEN = "ghp_patchwarden_test_token"
REPO = "Codertocat/Hello-World"

BASE = b'''"""Network helpers."""

import subprocess


def ping(host):
    return subprocess.call(["ping", "-c", "1", host])
'''

HEAD = b'''"""Network helpers."""

import os
import subprocess


def ping(host):
    return subprocess.call(["ping", "-c", "1", host])


def trace(host):
    return subprocess.call("traceroute " + host, shell=True)
'''
# Lines in HEAD: 3 `import os` (unused), 12 the shell call.

FIXED = b'''"""Network helpers."""

import subprocess


def ping(host):
    return subprocess.call(["ping", "-c", "1", host])


def trace(host):
    return subprocess.call("traceroute " + host, shell=True)
'''


def opened_payload() -> dict:
    return fixture("github/pull_request.opened.2.json")


def pr_comment_payload(body: str, login: str, association: str, user_type: str = "User") -> dict:
    """An issue_comment on pull request #2. The package has no such example (see the fixtures'
    README): derived from issue_comment.created.4.json by adding ``issue.pull_request``."""
    payload = fixture("github/issue_comment.created.4.json")
    payload["issue"]["number"] = 2
    payload["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{REPO}/pulls/2",
        "html_url": f"https://github.com/{REPO}/pull/2",
        "diff_url": f"https://github.com/{REPO}/pull/2.diff",
        "patch_url": f"https://github.com/{REPO}/pull/2.patch",
        "merged_at": None,
    }
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["comment"]["user"]["type"] = user_type
    payload["comment"]["author_association"] = association
    return payload


@pytest.fixture
async def github():
    """GitHub with the bot's token an installation token minted outside the bot (like Actions'
    GITHUB_TOKEN): only GitHub Apps may write check runs. Such a token has no ``GET /user``, so
    the bot is told its login."""
    async with FakeGitHub(token=TOKEN, token_kind="installation") as gh:
        yield gh


def settings_for(tmp_path, gh: FakeGitHub, **extra):
    github = {"api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_interval": 0,
              "bot_login": gh.bot_login, **extra}  # fmt: skip
    return make_settings(tmp_path, {"github": github})


def serve_setup(tmp_path, gh: FakeGitHub, name: str = "serve", **config):
    github = {"bot_login": gh.bot_login, **config.pop("github", {})}
    return github_serve_setup(tmp_path, gh.url, TOKEN, name, github=github, **config)


def comment_lines(review: dict) -> list[int]:
    return sorted(c["line"] for c in review["comments"])


async def test_serve_process_reviews_an_opened_pull_request(tmp_path, github):
    """The real `patchwarden serve` process, configured from the environment like in production."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    serve = ServeProcess(*serve_setup(tmp_path, github))
    try:
        await serve.wait_ready()
        status, answer = await post_github(serve.url, "pull_request", opened_payload(), "delivery-opened-1")
        assert (status, answer["status"]) == (202, "queued")
        await wait_until(lambda: github.reviews, what="the review")
        await wait_until(
            lambda: github.check_runs and github.check_runs[0]["status"] == "completed", what="check run"
        )
        reviewed = 'patchwarden_jobs_total{outcome="reviewed",platform="github"} 1.0'
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # the job is counted just after its last API call
                async with session.get(serve.url + "/metrics") as resp:
                    metrics_text = await resp.text()
                if reviewed in metrics_text:
                    break
                await asyncio.sleep(0.1)
    finally:
        serve.stop()

    assert len(github.reviews) == 1
    review = github.reviews[0]
    assert review["event"] == "COMMENT"
    assert review["commit_id"] == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert review["body"].splitlines()[0] == "1 security defect is detected in the lines this change touches."
    assert "net.py:12" in review["body"] and "net.py:3" in review["body"]
    assert comment_lines(review) == [3, 12]
    by_line = {c["line"]: c for c in review["comments"]}
    assert all(c["side"] == "RIGHT" and c["path"] == "net.py" for c in review["comments"])
    assert "`os`" in by_line[3]["body"] and by_line[3]["body"].startswith("**")
    assert "subprocess.call" in by_line[12]["body"] and "**Fix:**" in by_line[12]["body"]
    assert re.search(r"<!-- patchwarden:fingerprint=[0-9a-f]{16} -->", by_line[12]["body"])
    run = github.check_runs[0]
    assert run["name"] == "patchwarden" and run["head_sha"] == review["commit_id"]
    assert run["conclusion"] == "neutral" and "security defect" in run["output"]["title"]
    assert reviewed in metrics_text
    # Every call carried the token (the fake answers 401 otherwise, which would have failed the job).
    assert github.requests and all(
        r["headers"].get("Authorization") == f"token {TOKEN}" for r in github.requests
    )


async def test_synchronize_replies_on_fixed_findings_and_posts_no_duplicates(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "d-1"))[0] == 202
        await wait_idle(service)
        first = github.reviews[-1]
        assert comment_lines(first) == [3, 12]
        unused_comment = next(c for c in github.review_comments if c["line"] == 3)

        async def push(files: dict[str, bytes], sha: str, delivery: str) -> None:
            github.push("Codertocat", "Hello-World", 2, files, sha)
            sync = fixture("github/pull_request.synchronize.json")
            sync["pull_request"]["head"]["sha"] = sync["after"] = sha
            assert (await post_github(url, "pull_request", sync, delivery))[0] == 202
            await wait_idle(service)

        # The unused import is fixed; the shell call stays: the verdict does not change.
        await push({"net.py": FIXED}, "b" * 40, "d-2")
        assert len(github.reviews) == 1, "no new finding, same verdict: no second summary"
        assert len(github.replies) == 1
        reply = github.replies[0]
        assert reply["in_reply_to_id"] == unused_comment["id"]
        assert reply["body"].startswith(f"Fixed in {'b' * 7}")
        assert [r["head_sha"] for r in github.check_runs] == [first["commit_id"], "b" * 40]
        assert github.check_runs[1]["output"]["title"] == first["body"].splitlines()[0]

        # The same defects, moved: still nothing new. Then the shell call is fixed: a new verdict.
        await push({"net.py": b"# moved\n" + FIXED}, "c" * 40, "d-3")
        threads = [c for c in github.review_comments if not c.get("in_reply_to_id")]
        assert len(github.reviews) == 1 and len(threads) == 2, "a moved finding is not posted again"
        await push({"net.py": BASE}, "d" * 40, "d-4")

    assert len(github.reviews) == 2
    second = github.reviews[-1]
    assert second["commit_id"] == "d" * 40 and second["comments"] == []
    assert second["body"].splitlines()[0] == VERDICT_CLEAN
    assert len(github.replies) == 2 and github.replies[1]["body"].startswith(f"Fixed in {'d' * 7}")


async def test_rescan_from_trusted_untrusted_and_bot_users(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        untrusted = pr_comment_payload("/rescan", "drive-by", "NONE")
        status, answer = await post_github(url, "issue_comment", untrusted, "c-1")
        assert status == 200 and "not trusted" in answer["reason"]
        bot = pr_comment_payload("/rescan", "patchwarden[bot]", "NONE", user_type="Bot")
        status, answer = await post_github(url, "issue_comment", bot, "c-2")
        assert status == 200 and "bot" in answer["reason"]
        chatter = pr_comment_payload("Thanks! Will /rescan later", "Codertocat", "OWNER")
        assert (await post_github(url, "issue_comment", chatter, "c-3"))[1]["reason"] == "no /rescan command"
        await wait_idle(service)
        assert github.reviews == [] and github.reactions == []

        trusted = pr_comment_payload("Looks odd.\n/rescan\n", "Codertocat", "OWNER")
        github.add_issue_comment_from_payload(trusted)  # the comment exists on GitHub: it can be reacted to
        assert (await post_github(url, "issue_comment", trusted, "c-4"))[0] == 202
        await wait_idle(service)
    assert len(github.reviews) == 1 and comment_lines(github.reviews[0]) == [3, 12]
    assert [r["content"] for r in github.reactions] == ["eyes"]


async def test_pull_request_cannot_switch_the_bot_off_for_itself(tmp_path, github):
    head = {"net.py": HEAD, ".patchwarden.yaml": b"enabled: false\n"}
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, head)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_idle(service)
    assert len(github.reviews) == 1
    assert comment_lines(github.reviews[0]) == [3, 12]


async def test_base_branch_opt_out_and_server_skip_list(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.set_branch_file("Codertocat", "Hello-World", "master", ".patchwarden.yaml", b"enabled: false\n")
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "d-1"))[0] == 202
        counts = await wait_idle(service)
        jobs = await service.queue.jobs()
    assert counts == {"done": 1} and "enabled: false" in jobs[0]["error"]
    assert github.reviews == [] and github.check_runs == [], "an opted-out repository sees nothing"

    async with running_service(
        settings_for(tmp_path / "skip", github, skip_repositories=["codertocat/*"])
    ) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-2")
        await wait_idle(service)
        jobs = await service.queue.jobs()
    assert "skip_repositories" in jobs[0]["error"] and github.reviews == []


async def test_webhook_rejections(tmp_path, github):
    settings = settings_for(tmp_path, github)
    async with running_service(settings) as (url, service):
        body = json.dumps(opened_payload()).encode()
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "x",
            "Content-Type": "application/json",
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/webhooks/github", data=body, headers=headers) as resp:
                assert resp.status == 401  # unsigned
            bad = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
            async with session.post(url + "/webhooks/github", data=body, headers=bad) as resp:
                assert resp.status == 401
        # signed with the wrong secret
        assert (await post_github(url, "pull_request", opened_payload(), "x2", secret="other"))[0] == 401
        # correctly signed but not JSON / not the event it claims
        status, answer = await post_github(url, "pull_request", b"{not json", "x3")
        assert status == 400
        status, answer = await post_github(url, "pull_request", fixture("github/ping.2.json"), "x4")
        assert status == 400 and "pull_request" in answer["error"]
        # over the size limit
        padding = "x" * (settings.server.max_body_bytes + 1)
        huge = json.dumps({**opened_payload(), "padding": padding}).encode()
        assert (await post_github(url, "pull_request", huge, "x5"))[0] == 413
        # housekeeping events are acknowledged and ignored
        assert (await post_github(url, "ping", fixture("github/ping.2.json"), "x6"))[0] == 200
        assert (await post_github(url, "installation", fixture("github/installation.created.1.json"), "x7"))[
            0
        ] == 200
        counts = await service.queue.counts()
    assert counts == {} and github.reviews == []


async def test_duplicate_delivery_is_reviewed_once(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        first = await post_github(url, "pull_request", opened_payload(), "same-delivery")
        second = await post_github(url, "pull_request", opened_payload(), "same-delivery")
        await wait_idle(service)
    assert first[0] == 202 and second == (200, {"status": "duplicate", "delivery": "same-delivery"})
    assert len(github.reviews) == 1


async def test_one_refused_comment_does_not_lose_the_review(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.refuse_comments(r"`os`")  # GitHub refuses the comment on the unused import
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_idle(service)
    posted = [c for r in github.reviews for c in r["comments"]]
    assert [c["line"] for c in posted] == [12]
    # pulls/create-review: body is required for a COMMENT review, the partial ones included.
    assert all(r["body"].strip() for r in github.reviews)
    summary = github.reviews[-1]["body"]
    assert summary.splitlines()[0].startswith("1 security defect")
    assert "GitHub refused these inline comments" in summary and "net.py:3" in summary


async def test_rate_limit_and_server_errors_are_retried(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.fail_next("GET", r"/pulls/2$", 502, count=2)
    github.fail_next("POST", r"/pulls/2/reviews$", 403, headers={"Retry-After": "1"}, count=1)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    assert len(github.reviews) == 1 and comment_lines(github.reviews[0]) == [3, 12]
    review_posts = [r for r in github.requests if r["method"] == "POST" and r["path"].endswith("/reviews")]
    assert len(review_posts) == 2  # refused once with Retry-After, then accepted


async def test_a_failed_scan_closes_its_check_run(tmp_path, github):
    """A scan that cannot finish must not leave a check run spinning "in progress" on the PR."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.fail_next("GET", r"/pulls/2/files", 404, count=5)  # every attempt (5 by default) fails
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"failed": 1} and github.reviews == []
    # One check run for the job: each retry reopens the run the attempt before it closed.
    (run,) = github.check_runs
    assert (run["status"], run["conclusion"]) == ("completed", "neutral")
    assert run["output"]["title"] == "The review could not be completed"
    assert "Not Found" in run["output"]["summary"]
    # ... and the conversation says so once: no silent failure.
    (comment,) = github.issue_comments
    assert comment["body"].startswith("Patchwarden could not review ")
    assert "after 5 attempts" in comment["body"] and "Comment `/rescan` to try again." in comment["body"]


async def test_newer_push_supersedes_the_queued_scan(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    settings = settings_for(tmp_path, github)
    paused = settings.model_copy(update={"server": settings.server.model_copy(update={"workers": 0})})
    async with running_service(paused) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        sync = fixture("github/pull_request.synchronize.json")
        sync["pull_request"]["head"]["sha"] = "1" * 40  # a newer push
        await post_github(url, "pull_request", sync, "d-2")
        jobs = await service.queue.jobs()
    assert [j["state"] for j in jobs] == ["superseded", "pending"]


async def test_event_for_an_already_reviewed_head_is_not_reviewed_again(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_idle(service)
        reopened = fixture("github/pull_request.synchronize.json")  # same head SHA as the opened one
        status, answer = await post_github(url, "pull_request", reopened, "d-2")
        assert (status, answer["reason"]) == (200, "revision already reviewed")
    assert len(github.reviews) == 1


async def test_newer_push_cancels_the_running_scan_and_its_check_run(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    slow_files = github.hold("GET", r"/pulls/2/files$")
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_until(lambda: github.check_runs, what="the first scan to begin")
        sync = fixture("github/pull_request.synchronize.json")
        sync["pull_request"]["head"]["sha"] = "1" * 40  # a newer push while the first scan runs
        await post_github(url, "pull_request", sync, "d-2")
        await wait_until(lambda: github.check_runs[0]["status"] == "completed", what="the cancelled run")
        slow_files.set()
        await wait_idle(service)
        states = [j["state"] for j in await service.queue.jobs()]
    assert states == ["superseded", "done"]
    first, second = github.check_runs
    assert (first["conclusion"], first["output"]["title"]) == ("cancelled", "Review cancelled")
    assert "superseded" in first["output"]["summary"]
    assert second["conclusion"] == "neutral" and len(github.reviews) == 1


def rerequested_payload(name: str = "patchwarden") -> dict:
    """check_run.rerequested for PR #2, from the package's example (which is for another repo)."""
    opened = opened_payload()
    payload = fixture("github/check_run.rerequested.1.json")
    payload["repository"], payload["installation"] = opened["repository"], opened["installation"]
    run = payload["check_run"]
    run.update(name=name, head_sha=opened["pull_request"]["head"]["sha"])
    head = {k: opened["pull_request"]["head"][k] for k in ("ref", "sha")}
    base = {k: opened["pull_request"]["base"][k] for k in ("ref", "sha")}
    run["pull_requests"] = [{"number": 2, "id": opened["pull_request"]["id"], "head": head, "base": base}]
    return payload


async def test_drafts_wait_for_ready_and_rerun_of_our_check_rescans(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        draft = opened_payload()
        draft["pull_request"]["draft"] = True
        assert await post_github(url, "pull_request", draft, "d-1") == (
            200, {"status": "ignored", "reason": "draft pull request"},
        )  # fmt: skip
        ready = opened_payload()
        ready["action"] = "ready_for_review"
        assert (await post_github(url, "pull_request", ready, "d-2"))[0] == 202
        await wait_idle(service)
        assert len(github.reviews) == 1 and comment_lines(github.reviews[0]) == [3, 12]

        other = await post_github(url, "check_run", rerequested_payload("someone-else"), "d-3")
        assert other[1]["reason"] == "check run 'someone-else' is not ours"
        assert (await post_github(url, "check_run", rerequested_payload(), "d-4"))[0] == 202
        await wait_idle(service)
    assert len(github.reviews) == 2, "a re-run always scans, even the same head"
    assert github.reviews[1]["comments"] == [], "nothing already commented is posted again"
    assert [r["status"] for r in github.check_runs] == ["completed", "completed"]


async def test_killed_after_202_still_reviews_after_restart(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    # First life: accepts and persists events but runs no scans, then dies by SIGKILL.
    first = ServeProcess(*serve_setup(tmp_path, github, "ingest", server={"workers": 0}))
    try:
        await first.wait_ready()
        assert (await post_github(first.url, "pull_request", opened_payload(), "d-kill"))[0] == 202
    finally:
        first.kill()
    await asyncio.sleep(0.2)
    assert github.reviews == []

    second = ServeProcess(*serve_setup(tmp_path, github, "normal"))
    try:
        await second.wait_ready()
        await wait_until(lambda: github.reviews, what="the review after restart")
        # A redelivery of the same event after the restart is still recognised.
        status, answer = await post_github(second.url, "pull_request", opened_payload(), "d-kill")
    finally:
        second.stop()
    assert comment_lines(github.reviews[0]) == [3, 12]
    assert (status, answer["status"]) == (200, "duplicate")


async def test_github_app_installation_token_flow(tmp_path):
    from tests.fakes.github import generate_app_key

    private_pem, _public = generate_app_key()
    async with FakeGitHub(app_id=4242, app_private_key_pem=private_pem) as gh:
        gh.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
        key_file = tmp_path / "app.pem"
        key_file.write_bytes(private_pem)
        github = {"api_url": gh.url, "app_id": 4242, "private_key_file": str(key_file),
                  "webhook_secret": SECRET, "write_interval": 0}  # fmt: skip
        async with running_service(make_settings(tmp_path, {"github": github})) as (url, service):
            await post_github(url, "pull_request", opened_payload(), "d-1")
            await wait_idle(service)
            sync = copy.deepcopy(fixture("github/pull_request.synchronize.json"))
            await post_github(url, "pull_request", sync, "d-2")
            await wait_idle(service)
    assert len(gh.token_exchanges) == 1, "the installation token is cached between jobs"
    assert len(gh.reviews) == 1 and comment_lines(gh.reviews[0]) == [3, 12]
    assert gh.review_comments[0]["user"]["login"] == "patchwarden[bot]"
    assert MARKER.split("=")[0] in gh.review_comments[0]["body"]


async def test_clean_pull_request_gets_the_clean_verdict_and_a_green_check(tmp_path, github):
    clean = BASE + b"\n\ndef double(x):\n    return 2 * x\n"
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": clean})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_idle(service)
    assert github.reviews[0]["body"].splitlines()[0] == VERDICT_CLEAN
    assert github.reviews[0]["comments"] == []
    assert github.check_runs[0]["conclusion"] == "success"


async def test_many_files_paginated_large_patch_renamed_deleted_binary(tmp_path, github):
    base = {
        "net.py": BASE,
        "old_name.py": b"import json\n\n\ndef dump(x):\n    return json.dumps(x)\n",
        "gone.py": b"print('bye')\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
    }
    big = b"".join(b"VALUE_%d = %d\n" % (i, i) for i in range(400)) + b"import os\n"
    head = {
        "net.py": HEAD,
        "new_name.py": b"import json\nimport sys\n\n\ndef dump(x):\n    return json.dumps(x)\n",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x01",
        "big.py": big,
        "docs.txt": b"plain text is fetched by nobody\n",
    }
    github.add_pull_from_payload(opened_payload(), base, head)
    github.max_per_page = 2  # five pages of files
    github.max_patch_bytes = 2000  # GitHub omits the patch of big.py
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    comments = sorted((c["path"], c["line"]) for c in github.reviews[0]["comments"])
    assert comments == [("big.py", 401), ("net.py", 3), ("net.py", 12), ("new_name.py", 2)]
    file_pages = [r for r in github.requests if r["path"].endswith("/pulls/2/files")]
    assert len(file_pages) == 3
    fetched = {r["path"].split("/contents/")[1] for r in github.requests if "/contents/" in r["path"]}
    # Only files an analyzer reads were fetched (plus the config lookups on the base branch).
    assert fetched == {"net.py", "new_name.py", "big.py", ".patchwarden.yaml", ".github/patchwarden.yaml"}


# ---- documented shapes the bot must handle ---------------------------------------------------

SHELL = b"import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"  # line 5


def review_comments(gh: FakeGitHub) -> list[tuple[str, int]]:
    return sorted((c["path"], c["line"]) for r in gh.reviews for c in r["comments"])


async def test_files_over_1mb_are_read_as_blobs_and_files_over_the_limit_are_skipped_by_name(
    tmp_path, github
):
    """contents answers `encoding: "none"` above 1 MB: the bot reads those files (head and, when
    GitHub omits the patch, base) from the git blobs API; a file over engine.max_file_bytes is
    listed as not reviewed, by name, and never downloaded."""
    base_big = b"".join(b"# %04d %s\n" % (i, b"x" * 1000) for i in range(1200))  # 1.2 MB
    head_big = (
        b"".join(b"# %04d %s\n" % (i, (b"y" if i % 100 == 0 else b"x") * 1000) for i in range(1200)) + SHELL
    )  # the shell call is line 1205
    huge = b"#" * 3_000_000 + b"\n"
    github.add_pull_from_payload(
        opened_payload(),
        {"net.py": BASE, "big.py": base_big},
        {"net.py": HEAD, "big.py": head_big, "huge.py": huge},
    )
    github.max_patch_bytes = 50_000  # GitHub omits big.py's patch: the bot diffs the two blobs
    settings = make_settings(tmp_path, {
        "github": {"api_url": github.url, "token": TOKEN, "webhook_secret": SECRET, "write_interval": 0,
                   "bot_login": github.bot_login},
        "engine": {"max_file_bytes": 2_000_000},
    })  # fmt: skip
    async with running_service(settings) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    assert ("big.py", 1205) in review_comments(github)
    summary = github.reviews[0]["body"]
    assert (
        "huge.py: not reviewed: 3,000,001 bytes is over the 2,000,000-byte limit (engine.max_file_bytes)"
        in summary
    )
    assert "big.py" not in summary.split("**Security defects**")[0], "big.py was reviewed"
    blobs = sorted(r["path"].rsplit("/", 1)[1] for r in github.requests if "/git/blobs/" in r["path"])
    assert blobs == sorted([git_blob_sha(head_big), git_blob_sha(base_big)])
    assert git_blob_sha(huge) not in blobs


async def test_file_names_are_encoded_segment_by_segment_and_never_leave_contents(tmp_path, github):
    """A file name is data: `%`, `?`, `#`, spaces and unicode are percent-encoded per segment, and
    a name with a `..` or `.` segment is refused (listed as not reviewed) instead of being resolved
    into a request outside contents/. The fake records every request: none went anywhere else."""
    head = {
        "net.py": HEAD,
        "dir with space/100% sure?#1.py": SHELL,
        "ünïcødé/naïve.py": SHELL,
        "../pulls/2.py": SHELL,  # would resolve to /repos/Codertocat/Hello-World/pulls/2.py
        "sub/shadow.py": b"x = 1\n",
        "sub/./shadow.py": SHELL,  # would resolve to sub/shadow.py: another file's content
    }
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, head)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    comments = review_comments(github)
    assert ("dir with space/100% sure?#1.py", 5) in comments and ("ünïcødé/naïve.py", 5) in comments
    assert ("net.py", 3) in comments and ("net.py", 12) in comments
    assert not any(path in ("../pulls/2.py", "sub/./shadow.py") for path, _ in comments)
    summary = github.reviews[0]["body"]
    assert "../pulls/2.py: not reviewed: unsafe file name" in summary
    assert "sub/./shadow.py: not reviewed: unsafe file name" in summary

    repo = "/repos/Codertocat/Hello-World"
    allowed = re.compile(
        rf"^{repo}/(pulls/2(/files|/comments|/reviews)?|contents/.+|check-runs(/\d+)?|git/blobs/[0-9a-f]{{40}})$"
    )
    assert [r["path"] for r in github.requests if not allowed.match(r["path"])] == []
    fetched = {r["path"].split("/contents/", 1)[1] for r in github.requests if "/contents/" in r["path"]}
    assert fetched == {
        "net.py", "dir with space/100% sure?#1.py", "ünïcødé/naïve.py", "sub/shadow.py",
        ".patchwarden.yaml", ".github/patchwarden.yaml",
    }  # fmt: skip
    raw = {r["raw_path"] for r in github.requests if "/contents/dir" in r["path"]}
    assert raw == {f"{repo}/contents/dir%20with%20space/100%25%20sure%3F%231.py"}


async def test_symlinks_submodules_and_files_missing_at_the_head_are_skipped_with_the_reason(
    tmp_path, github
):
    """contents answers a symlink to a file with the target's content, other symlinks with
    `type: symlink`, a submodule with `type: submodule`, a vanished file with 404: none of them
    fails the job; each is listed as not reviewed with the reason, and the rest is reviewed."""
    head = {
        "net.py": HEAD,
        "link_to_net.py": Symlink("net.py"),
        "dangling.py": Symlink("nowhere/missing.py"),
        "vendor/lib.py": Submodule("f" * 40),
        "gone.py": b"x = 1\n",
    }
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, head)
    github.fail_next("GET", r"/contents/gone\.py$", 404)  # deleted again between listing and fetch
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    assert review_comments(github) == [("net.py", 3), ("net.py", 12)]
    summary = github.reviews[0]["body"]
    head_sha = github.pull("Codertocat", "Hello-World", 2).head_sha
    for line in (
        "link_to_net.py: not reviewed: a symlink to 'net.py'",
        "dangling.py: not reviewed: a symlink to 'nowhere/missing.py'",
        "vendor/lib.py: not reviewed: a submodule (https://github.com/octocat/Spoon-Knife.git at fffffff)",
        f"gone.py: not reviewed: not found at {head_sha[:12]}",
    ):
        assert line in summary, (line, summary)
    assert github.check_runs[0]["conclusion"] == "neutral"  # an incomplete review is never green


async def test_github_lists_at_most_3000_files_and_the_rest_is_named_as_not_reviewed(tmp_path, github):
    """pulls/list-files returns at most 3,000 files: the bot compares with `changed_files` and
    says the review is incomplete (here the cap is lowered to 3 so that net.py is not listed)."""
    head = {"a.txt": b"a\n", "b.txt": b"b\n", "c.txt": b"c\n", "d.txt": b"d\n", "net.py": HEAD}
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, head)
    github.pull_files_limit = 3
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        await wait_idle(service)
    summary = github.reviews[0]["body"]
    assert "GitHub lists only 3 of the 5 changed files; the others were not reviewed" in summary
    assert github.check_runs[0]["conclusion"] != "success"


async def test_a_personal_access_token_gets_no_check_run_but_the_review_is_posted(tmp_path):
    """Only GitHub Apps may create check runs: a PAT gets 403 "You must authenticate via a GitHub
    App." The bot logs it and still posts its review (its login comes from GET /user)."""
    async with FakeGitHub(token=TOKEN) as gh:
        gh.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
        settings = make_settings(tmp_path, {"github": {
            "api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_interval": 0}})  # fmt: skip
        async with running_service(settings) as (url, service):
            await post_github(url, "pull_request", opened_payload(), "d-1")
            counts = await wait_idle(service)
    assert counts == {"done": 1} and gh.check_runs == []
    refused = [r for r in gh.requests if r["path"].endswith("/check-runs")]
    assert [(r["method"], r["status"]) for r in refused] == [("POST", 403)]
    assert comment_lines(gh.reviews[0]) == [3, 12]


async def test_secondary_rate_limit_without_retry_after_waits_then_retries(github):
    """rate-limits-for-the-rest-api.md, "Exceeding the rate limit": a secondary rate limit with
    neither retry-after nor x-ratelimit-remaining 0 means "wait for at least one minute before
    retrying" -- the bot waits (shortened here) instead of failing the request."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.fail_next("GET", r"/pulls/2$", 403, count=2)  # the fake's secondary-limit message, no headers
    async with aiohttp.ClientSession() as session:
        api = PacedGitHubAPI(
            session, "test", oauth_token=TOKEN, base_url=github.url, pacer=Pacer(0), secondary_wait=0.05
        )
        started = asyncio.get_running_loop().time()
        pull = await api.getitem("/repos/Codertocat/Hello-World/pulls/2")
        waited = asyncio.get_running_loop().time() - started
    assert pull["number"] == 2
    assert waited >= 0.05 + 0.1, "waited secondary_wait, then twice as long"
    assert [r["status"] for r in github.requests] == [403, 403, 200]


def test_contents_url_encodes_each_segment_and_refuses_dot_segments():
    assert (
        contents_url("o/r", "a b/c?d#e%f.py", "main") == "/repos/o/r/contents/a%20b/c%3Fd%23e%25f.py?ref=main"
    )
    assert contents_url("o/r", "é.py", "feature/x") == "/repos/o/r/contents/%C3%A9.py?ref=feature%2Fx"
    for bad in ("../x.py", "a/../x.py", "a/./x.py", "a//x.py", "/x.py", "x/"):
        with pytest.raises(NotReviewable, match="unsafe file name"):
            contents_url("o/r", bad, "main")


@pytest.mark.parametrize("lost_as", [502, None], ids=["502-after-apply", "connection-dropped"])
async def test_a_lost_review_answer_does_not_post_the_review_twice(tmp_path, github, lost_as):
    """Creating a review is not idempotent (github/rest-api-description: POST
    /repos/{owner}/{repo}/pulls/{pull_number}/reviews): after an ambiguous failure the bot looks
    for its run marker among its reviews before posting again."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.lose_answer("POST", r"/pulls/2/reviews$", status=lost_as)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    assert len(github.reviews) == 1 and comment_lines(github.reviews[0]) == [3, 12]
    assert "<!-- patchwarden:run=1 -->" in github.reviews[0]["body"]
    (run,) = github.check_runs
    assert (run["status"], run["conclusion"]) == ("completed", "neutral")


async def test_the_bots_own_account_cannot_command_it(tmp_path):
    """Token mode: the token's user (GET /user) is the bot; its comments are never obeyed, even
    with a trusted association and a User type."""
    async with FakeGitHub(token=TOKEN) as gh:
        gh.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
        settings = make_settings(tmp_path, {"github": {
            "api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_interval": 0}})  # fmt: skip
        async with running_service(settings) as (url, service):
            own = pr_comment_payload("/rescan", gh.bot_login, "OWNER")
            status, answer = await post_github(url, "issue_comment", own, "c-own")
            await wait_idle(service)
            jobs = await service.queue.jobs()
    assert status == 200 and "own account" in answer["reason"]
    assert jobs == [] and gh.reviews == [] and gh.issue_comments == []


async def test_rescans_are_rate_limited_and_a_refusal_is_answered_once(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    settings = settings_for(tmp_path, github)
    limit = settings.commands.rescan_per_change
    async with running_service(settings) as (url, service):
        for n in range(limit + 3):
            trusted = pr_comment_payload(f"/rescan {n}\n/rescan", "Codertocat", "OWNER")
            trusted["comment"]["id"] += n
            github.add_issue_comment_from_payload(trusted)
            status, answer = await post_github(url, "issue_comment", trusted, f"c-{n}")
            if n < limit:
                assert status == 202, answer
                await wait_idle(service)
            else:
                assert status == 200 and f"rescanned {limit} times" in answer["reason"], answer
    assert len(github.reviews) == limit
    refusals = [c for c in github.issue_comments if "`/rescan` was not run" in (c.get("body") or "")]
    assert len(refusals) == 1 and refusals[0]["body"].startswith("@Codertocat ")


async def test_five_429s_in_a_row_delay_the_review_but_do_not_lose_it(tmp_path, github):
    """rate-limits-for-the-rest-api.md: a 429 means "wait and retry"; after the client's own
    retries the job is retried later, never failed for good."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.fail_next("GET", r"/pulls/2/files$", 429, headers={"Retry-After": "0"}, count=6)
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        await post_github(url, "pull_request", opened_payload(), "d-1")
        counts = await wait_idle(service)
    assert counts == {"done": 1}
    assert len(github.reviews) == 1 and comment_lines(github.reviews[0]) == [3, 12]


async def test_an_opted_out_repository_sees_no_reaction_to_a_rescan(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.set_branch_file("Codertocat", "Hello-World", "master", ".patchwarden.yaml", b"enabled: false\n")
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        trusted = pr_comment_payload("/rescan", "Codertocat", "OWNER")
        github.add_issue_comment_from_payload(trusted)
        assert (await post_github(url, "issue_comment", trusted, "c-1"))[0] == 202
        await wait_idle(service)
    assert github.reactions == [] and github.reviews == [] and github.check_runs == []


async def test_kill_after_the_review_is_applied_posts_nothing_more_and_closes_the_check_run(tmp_path, github):
    """`kill -9` between GitHub applying the review and the job being marked done: the restarted
    process resumes the job, finds its run marker, posts no second review, and completes the
    check run the killed attempt opened instead of leaving it in progress."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    release = asyncio.Event()
    github.lose_answer("POST", r"/pulls/2/reviews$", status=None, hold=release)
    first = ServeProcess(*serve_setup(tmp_path, github, "first", server={"retry_base_delay": 0.2}))
    try:
        await first.wait_ready()
        assert (await post_github(first.url, "pull_request", opened_payload(), "d-1"))[0] == 202
        await wait_until(lambda: github.reviews, what="the review to be applied")
        first.kill()
    finally:
        release.set()
        first.stop()
    assert [r["status"] for r in github.check_runs] == ["in_progress"]
    second = ServeProcess(*serve_setup(tmp_path, github, "second", server={"retry_base_delay": 0.2}))
    try:
        await second.wait_ready()
        await wait_until(
            lambda: github.check_runs[0]["status"] == "completed", timeout=60, what="the check run to close"
        )
    finally:
        second.stop()
    assert len(github.reviews) == 1
    (run,) = github.check_runs
    assert (run["status"], run["conclusion"]) == ("completed", "neutral")


async def test_pacer_allows_a_burst_and_never_more_than_the_limit_in_any_window():
    """rate-limits-for-the-rest-api.md: at most 80 content-creating requests a minute and 500 an
    hour. The first 80 go at once; the 81st waits until the first leaves the minute window."""
    now = [1000.0]
    pacer = Pacer(limits=((80, 60.0), (500, 3600.0)), clock=lambda: now[0])
    for _ in range(80):
        assert pacer.delay() == 0
        await pacer.wait()
    assert pacer.delay() == pytest.approx(60 * 1.02 + 0.1)  # the window plus a small margin
    now[0] += 61.3
    assert pacer.delay() == 0
    hour = Pacer(limits=((80, 60.0), (500, 3600.0)), clock=lambda: now[0])
    per_minute = []
    for _ in range(10):  # as many as allowed, minute after minute: the hourly limit binds
        sent = 0
        while sent < 80 and hour.delay() == 0:
            await hour.wait()
            sent += 1
        per_minute.append(sent)
        now[0] += 62  # a minute and the margin
    assert per_minute == [80] * 6 + [20, 0, 0, 0]


async def test_a_burst_of_pull_requests_never_meets_the_fakes_secondary_limit(tmp_path):
    """A plain token and a fake that enforces a (scaled-down) secondary limit of 6 writes in any
    3 s: the bot's own pacing at the same limit keeps every write under it, so GitHub never
    answers 403 "secondary rate limit", and every pull request is reviewed."""
    async with FakeGitHub(token=TOKEN, content_creation_limits=[(3.0, 6)]) as gh:
        for n in range(30, 42):
            payload = opened_payload()
            payload["number"] = payload["pull_request"]["number"] = n
            payload["pull_request"]["head"]["sha"] = f"{n:040x}"
            gh.add_pull_from_payload(payload, {"net.py": BASE}, {"net.py": HEAD})
        settings = make_settings(tmp_path, {"github": {
            "api_url": gh.url, "token": TOKEN, "webhook_secret": SECRET, "write_limits": [[6, 3.0]]}})  # fmt: skip
        async with running_service(settings) as (url, service):
            for n in range(30, 42):
                payload = opened_payload()
                payload["number"] = payload["pull_request"]["number"] = n
                payload["pull_request"]["head"]["sha"] = f"{n:040x}"
                assert (await post_github(url, "pull_request", payload, f"d-{n}"))[0] == 202
            counts = await wait_idle(service, timeout=120)
    assert counts == {"done": 12} and len(gh.reviews) == 12
    writes = [r for r in gh.requests if r["method"] in ("POST", "PATCH")]
    assert [r["path"] for r in writes if r["status"] == 403 and "check-runs" not in r["path"]] == []
    assert len([r for r in writes if r["path"].endswith("/check-runs")]) == 1  # refused once, not asked again

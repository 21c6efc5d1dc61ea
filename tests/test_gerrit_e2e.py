"""Gerrit end to end: real SSH event stream and REST between the real service and the strict
fake Gerrit, real analyzers."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
import yaml

from bot.platforms.gerrit import TAG
from bot.render import VERDICT_CLEAN
from tests.fakes.gerrit import FakeGerrit, Gitlink, Symlink, generate_ssh_keypair
from tests.service import (
    ServeProcess,
    fixture,
    make_settings,
    running_service,
    wait_idle,
    wait_until,
)

PROJECT = "openstack/nova"
USER, PASSWORD, HOOK_SECRET = "patchwarden", "http-secret", "hook-secret"

BASE = b'''"""Volume helpers."""

from nova import utils


def resize(path, size):
    utils.execute('qemu-img', 'resize', path, size)
'''

HEAD = b'''"""Volume helpers."""

import shutil

from nova import utils


def resize(path, size):
    utils.execute('qemu-img', 'resize', path, size)


def run_hook(cmd):
    utils.execute(cmd, run_as_root=True)
'''
# HEAD lines: 3 unused `shutil`, 13 utils.execute(cmd)

FIXED = HEAD.replace(b"import shutil\n\n", b"")  # drops the unused import; line 11 keeps execute


@pytest.fixture
async def gerrit(tmp_path):
    async with FakeGerrit(user=USER, http_password=PASSWORD) as g:
        key_path, public = generate_ssh_keypair(tmp_path / "ssh")
        g.authorize_ssh_key(public)
        known_hosts = tmp_path / "ssh" / "known_hosts"
        known_hosts.write_text(g.known_hosts_line() + "\n")
        g.set_branch_file(PROJECT, "master", "nova/volume.py", BASE)
        g.owner = g.add_account("Jane Dev", "jdev", "jane@example.com")  # type: ignore[attr-defined]
        g.key_path, g.known_hosts = key_path, known_hosts  # type: ignore[attr-defined]
        yield g


def gerrit_settings(tmp_path, g: FakeGerrit, **extra):
    gerrit = {
        "url": g.url,
        "user": USER,
        "http_password": PASSWORD,
        "event_source": "ssh",
        "ssh_host": "127.0.0.1",
        "ssh_port": g.ssh_port,
        "ssh_key_file": str(g.key_path),  # type: ignore[attr-defined]
        "ssh_known_hosts": str(g.known_hosts),  # type: ignore[attr-defined]
        "webhook_secret": HOOK_SECRET,
        **extra,
    }
    return make_settings(tmp_path, {"gerrit": gerrit})


def webhook_serve_setup(tmp_path, g: FakeGerrit, **config):
    """The config file and environment of a real `serve` on the webhook event source, as in
    production: credentials and endpoints from the environment, the rest from YAML."""
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({"gerrit": {"event_source": "webhook"}, **config}))
    env = {
        "PATCHWARDEN_GERRIT_URL": g.url,
        "PATCHWARDEN_GERRIT_USER": USER,
        "PATCHWARDEN_GERRIT_HTTP_PASSWORD": PASSWORD,
        "PATCHWARDEN_GERRIT_WEBHOOK_SECRET": HOOK_SECRET,
        "PATCHWARDEN_DATA_DIR": str(tmp_path / "data"),
    }
    return path, env


def reviews_of(g: FakeGerrit, number: int) -> list[dict]:
    return [r.input for r in g.reviews if r.change == number]


def inline(review: dict) -> list[tuple[str, int]]:
    return sorted((path, c["line"]) for path, items in review.get("comments", {}).items() for c in items)


async def test_patchset_fix_rescan_and_own_review_ignored(tmp_path, gerrit):
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Add run_hook", files={"nova/volume.py": HEAD}
        )
        await wait_until(lambda: reviews_of(gerrit, change.number), what="review of patchset 1")
        await wait_idle(service)
        first = reviews_of(gerrit, change.number)[0]
        assert first["tag"] == TAG and first["notify"] == "OWNER"
        assert (
            first["message"].splitlines()[0]
            == "1 security defect is detected in the lines this change touches."
        )
        assert inline(first) == [("nova/volume.py", 3), ("nova/volume.py", 13)]
        comments = {c["line"]: c for c in first["comments"]["nova/volume.py"]}
        assert comments[13]["unresolved"] is True and "utils.execute" in comments[13]["message"]
        assert "patchwarden:" in comments[13]["message"].splitlines()[-1]
        assert "labels" not in first  # voting is off by default

        # Patch set 2 removes the unused import: a reply on its thread, no duplicate of the rest.
        gerrit.upload_patchset(change, {"nova/volume.py": FIXED})
        await wait_until(lambda: len(reviews_of(gerrit, change.number)) == 2, what="review of patchset 2")
        await wait_idle(service)
        second = reviews_of(gerrit, change.number)[1]
        replies = [c for c in second["comments"]["nova/volume.py"] if c.get("in_reply_to")]
        assert [c for c in second["comments"]["nova/volume.py"] if not c.get("in_reply_to")] == []
        assert len(replies) == 1 and replies[0]["unresolved"] is False
        assert replies[0]["message"].startswith("Fixed in patchset 2")
        published = await_comments(gerrit, change)
        assert replies[0]["in_reply_to"] == published[(1, 3)]["id"]

        # The bot's own reviews produced comment-added events: none of them triggered a scan.
        jobs = await service.queue.jobs()
        assert len(jobs) == 2

        # A human asks for a rescan.
        gerrit.add_comment(change, gerrit.owner, "Rebased the hook.\n\n/rescan")
        await wait_until(lambda: len(reviews_of(gerrit, change.number)) == 3, what="rescan review")
        await wait_idle(service)
        third = reviews_of(gerrit, change.number)[2]
    assert third.get("comments", {}) == {}  # nothing new, nothing fixed
    assert "already commented on an earlier patchset" in third["message"]
    assert len(await_jobs := jobs) == 2 and await_jobs[0]["key"] == f"gerrit:{PROJECT}~{change.number}"


async def test_rescan_can_be_limited_to_a_group(tmp_path, gerrit):
    """The group is checked when the event arrives (rest-api-groups.txt "List Group Members"):
    a non-member's /rescan queues nothing and gets one short answer, however often it is sent."""
    reviewer = gerrit.add_account("Rita Core", "rcore", "rita@example.com")
    gerrit.add_group("nova-core", [reviewer])
    async with running_service(gerrit_settings(tmp_path, gerrit, rescan_group="nova-core")) as (
        _url,
        service,
    ):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Add run_hook", files={"nova/volume.py": HEAD}
        )
        await wait_until(lambda: reviews_of(gerrit, change.number), what="review of patchset 1")
        await wait_idle(service)

        for _ in range(3):
            gerrit.add_comment(change, gerrit.owner, "/rescan")  # the owner is not in nova-core
        await wait_until(lambda: refusals(gerrit, change.number), what="the refusal")
        gerrit.add_comment(change, reviewer, "Patch Set 1:\n\n/rescan")
        await wait_until(lambda: len(scans(gerrit, change.number)) == 2, what="the member's rescan")
        await wait_idle(service)
        jobs = await service.queue.jobs()
    assert len(jobs) == 2  # the owner's commands never reached the queue
    answers = refusals(gerrit, change.number)
    assert len(answers) == 1 and answers[0]["notify"] == "NONE" and answers[0]["tag"] == TAG
    assert (
        answers[0]["message"]
        == "/rescan by jdev was not run: only members of 'nova-core' may ask for a rescan."
    )


async def test_untrusted_rescan_at_upload_time_cannot_cancel_the_review(tmp_path, gerrit):
    """A change owner who uploads and comments /rescan at once must still get the review."""
    gerrit.add_group("nova-core", [])
    async with running_service(gerrit_settings(tmp_path, gerrit, rescan_group="nova-core")) as (
        _url,
        service,
    ):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Add run_hook", files={"nova/volume.py": HEAD}
        )
        gerrit.add_comment(change, gerrit.owner, "/rescan")
        await wait_until(lambda: scans(gerrit, change.number), what="the automatic review")
        await wait_idle(service)
    review = scans(gerrit, change.number)
    assert len(review) == 1
    assert inline(review[0]) == [("nova/volume.py", 3), ("nova/volume.py", 13)]


async def test_trusted_rescan_never_supersedes_the_automatic_review(tmp_path, gerrit):
    """Without a group anyone may rescan, but a rescan never replaces a scan under way, and
    rescans of one change are rate-limited (commands.rescan_per_change per window)."""
    settings = gerrit_settings(tmp_path, gerrit)
    async with running_service(settings) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Add run_hook", files={"nova/volume.py": HEAD}
        )
        gerrit.add_comment(change, gerrit.owner, "/rescan")  # while the automatic scan is pending
        await wait_until(lambda: scans(gerrit, change.number), what="the automatic review")
        await wait_idle(service)
        assert len(scans(gerrit, change.number)) == 1
        jobs = await service.queue.jobs()
        assert [j["kind"] for j in jobs] == ["review"]  # the redundant rescan queued nothing

        limit = settings.commands.rescan_per_change  # the redundant one above counted too
        for n in range(limit - 1):
            gerrit.add_comment(change, gerrit.owner, "/rescan")
            await wait_until(lambda n=n: len(scans(gerrit, change.number)) == n + 2, what=f"rescan {n + 1}")
            await wait_idle(service)
        for _ in range(3):  # over the limit: refused, answered once
            gerrit.add_comment(change, gerrit.owner, "/rescan")
        await wait_until(lambda: refusals(gerrit, change.number), what="the refusal")
        await wait_idle(service)
    assert len(scans(gerrit, change.number)) == limit
    answers = refusals(gerrit, change.number)
    assert len(answers) == 1 and f"rescanned {limit} times" in answers[0]["message"]


def scans(g: FakeGerrit, number: int) -> list[dict]:
    """The bot's review posts (summaries), without its answers to refused commands."""
    return [r for r in reviews_of(g, number) if not r.get("message", "").startswith("/rescan by ")]


def refusals(g: FakeGerrit, number: int) -> list[dict]:
    return [r for r in reviews_of(g, number) if r.get("message", "").startswith("/rescan by ")]


def await_comments(g: FakeGerrit, change) -> dict[tuple[int, int], dict]:
    """Published comments by (patch set, line), read from the fake's state."""
    out = {}
    for c in g.changes[change.number].comments:
        if c.in_reply_to is None:
            out[(c.patch_set, c.line)] = {"id": c.id}
    return out


async def test_dropped_stream_reconnects_and_catches_up(tmp_path, gerrit):
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        # The event of this patch set is lost while the connection is broken.
        assert gerrit.drop_streams() == 1
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Missed", files={"nova/volume.py": HEAD}, emit=False
        )
        await gerrit.wait_for_stream(1, timeout=20)
        await wait_until(lambda: reviews_of(gerrit, change.number), timeout=30, what="catch-up review")
        await wait_idle(service)
        # Reconnecting again does not review the same patch set twice.
        gerrit.drop_streams()
        await gerrit.wait_for_stream(1, timeout=20)
        await wait_idle(service)
    assert len(reviews_of(gerrit, change.number)) == 1
    assert inline(reviews_of(gerrit, change.number)[0]) == [("nova/volume.py", 3), ("nova/volume.py", 13)]


async def test_target_branch_opt_out_wip_and_trivial_rebase(tmp_path, gerrit):
    gerrit.set_branch_file("openstack/quiet", "master", ".patchwarden.yaml", b"enabled: false\n")
    gerrit.set_branch_file("openstack/quiet", "master", "nova/volume.py", BASE)
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        quiet = gerrit.create_change(
            "openstack/quiet", "master", gerrit.owner, "x", files={"nova/volume.py": HEAD}
        )
        wip = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "wip", files={"nova/volume.py": HEAD}, wip=True
        )
        # A change cannot opt itself out: its own .patchwarden.yaml is ignored.
        sneaky = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "sneaky",
            files={"nova/volume.py": HEAD, ".patchwarden.yaml": b"enabled: false\n"},
        )  # fmt: skip
        await wait_until(lambda: reviews_of(gerrit, sneaky.number), what="review of the sneaky change")
        gerrit.upload_patchset(sneaky, {}, kind="TRIVIAL_REBASE")
        gerrit.upload_patchset(sneaky, {}, kind="NO_CODE_CHANGE")
        await wait_idle(service)
        jobs = await service.queue.jobs()
    assert reviews_of(gerrit, quiet.number) == [] and reviews_of(gerrit, wip.number) == []
    assert len(reviews_of(gerrit, sneaky.number)) == 1
    quiet_job = next(j for j in jobs if j["key"].endswith(f"~{quiet.number}"))
    assert "enabled: false" in quiet_job["error"]
    assert not any(j["key"].endswith(f"~{wip.number}") for j in jobs)


async def test_webhook_source_requires_the_shared_secret(tmp_path, gerrit):
    settings = gerrit_settings(tmp_path, gerrit, event_source="webhook")
    async with running_service(settings) as (url, service):
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "hook", files={"nova/volume.py": HEAD}, emit=False
        )
        event = gerrit.patchset_created_event(change)
        body = json.dumps(event).encode()
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/webhooks/gerrit", data=body) as resp:
                assert resp.status == 401
            async with session.post(url + "/webhooks/gerrit?token=wrong", data=body) as resp:
                assert resp.status == 401
            async with session.post(url + "/webhooks/gerrit?token=" + HOOK_SECRET, data=b"{oops") as resp:
                assert resp.status == 400
            headers = {"X-Patchwarden-Token": HOOK_SECRET, "Content-Type": "application/json; charset=utf-8"}
            async with session.post(url + "/webhooks/gerrit", data=body, headers=headers) as resp:
                assert resp.status == 202
            async with session.post(url + "/webhooks/gerrit", data=body, headers=headers) as resp:
                assert (resp.status, (await resp.json())["status"]) == (200, "duplicate")  # plugin retry
        await wait_idle(service)
    assert inline(reviews_of(gerrit, change.number)[0]) == [("nova/volume.py", 3), ("nova/volume.py", 13)]


async def test_serve_process_with_fixture_event_over_webhook(tmp_path, gerrit):
    """The real `patchwarden serve` process; the body is the plugin's delivery fixture, adapted."""
    change = gerrit.create_change(
        PROJECT, "master", gerrit.owner, "hook", files={"nova/volume.py": HEAD}, emit=False
    )
    delivery = fixture("gerrit/webhooks/patchset-created.delivery.json")
    event = delivery["body"] if isinstance(delivery["body"], dict) else json.loads(delivery["body"])
    ps = gerrit.changes[change.number].patch_sets[-1]
    event["change"].update(project=PROJECT, number=change.number, branch="master")
    event["patchSet"].update(number=1, revision=ps.revision, kind="REWORK")
    serve = ServeProcess(*webhook_serve_setup(tmp_path, gerrit))
    try:
        await serve.wait_ready()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                serve.url + "/webhooks/gerrit", json=event, headers={"X-Patchwarden-Token": HOOK_SECRET}
            ) as resp,
        ):
            assert resp.status == 202
        await wait_until(lambda: reviews_of(gerrit, change.number), what="review")
    finally:
        serve.stop()
    review = reviews_of(gerrit, change.number)[0]
    assert inline(review) == [("nova/volume.py", 3), ("nova/volume.py", 13)]
    assert review["tag"] == TAG


async def test_wrong_http_password_fails_the_job_with_a_clear_error(tmp_path, gerrit, caplog):
    settings = gerrit_settings(tmp_path, gerrit, http_password="wrong", event_source="webhook")
    async with running_service(settings) as (url, service):
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "x", files={"nova/volume.py": HEAD}, emit=False
        )
        async with aiohttp.ClientSession() as session:
            await session.post(
                url + "/webhooks/gerrit",
                json=gerrit.patchset_created_event(change),
                headers={"X-Patchwarden-Token": HOOK_SECRET},
            )
        await wait_idle(service)
        jobs = await service.queue.jobs()
    assert jobs[0]["state"] == "failed" and "401" in jobs[0]["error"]
    assert "PATCHWARDEN_GERRIT_HTTP_PASSWORD" in caplog.text


async def test_clean_patchset_and_optional_vote(tmp_path, gerrit):
    gerrit.grant_label("Code-Review", -1, 1)
    settings = gerrit_settings(
        tmp_path, gerrit, vote_label="Code-Review", vote_value=-1, vote_min_severity="medium"
    )
    clean = BASE + b"\n\ndef double(x):\n    return 2 * x\n"
    async with running_service(settings) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        ok = gerrit.create_change(PROJECT, "master", gerrit.owner, "clean", files={"nova/volume.py": clean})
        bad = gerrit.create_change(PROJECT, "master", gerrit.owner, "bad", files={"nova/volume.py": HEAD})
        await wait_until(
            lambda: reviews_of(gerrit, ok.number) and reviews_of(gerrit, bad.number), what="reviews"
        )
        await wait_idle(service)
    assert reviews_of(gerrit, ok.number)[0]["message"].splitlines()[0] == VERDICT_CLEAN
    assert reviews_of(gerrit, ok.number)[0]["labels"] == {"Code-Review": 0}
    assert reviews_of(gerrit, bad.number)[0]["labels"] == {"Code-Review": -1}


async def test_catch_up_follows_more_changes_and_applies_the_live_skip_rules(tmp_path, gerrit):
    """rest-api-changes.txt, "Query Changes": no answer holds more than the caller's query limit,
    and the last change carries ``_more_changes``; catch-up must page with ``S`` until it is gone.
    Missed events get exactly the decisions live ones would (cmd-stream-events.txt
    patchset-created ``kind``; WIP and private changes)."""
    gerrit.query_limit = 2  # the account's queryLimit capability: pages of two whatever n says
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        rebased = gerrit.create_change(PROJECT, "master", gerrit.owner, "r", files={"nova/volume.py": HEAD})
        await wait_until(lambda: reviews_of(gerrit, rebased.number), what="live review")
        await wait_idle(service)
        assert gerrit.drop_streams() == 1
        # While the stream is down: five missed uploads, two of which live rules would skip.
        gerrit.upload_patchset(rebased, {}, kind="TRIVIAL_REBASE", emit=False)
        missed = [
            gerrit.create_change(PROJECT, "master", gerrit.owner, f"m{i}", files={"nova/volume.py": HEAD},
                                 emit=False)
            for i in range(3)
        ]  # fmt: skip
        wip = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "wip", files={"nova/volume.py": HEAD}, wip=True, emit=False
        )
        await gerrit.wait_for_stream(1, timeout=20)
        await wait_until(
            lambda: all(reviews_of(gerrit, c.number) for c in missed), timeout=30, what="catch-up reviews"
        )
        await wait_idle(service)
    for c in missed:
        assert len(reviews_of(gerrit, c.number)) == 1
        assert inline(reviews_of(gerrit, c.number)[0]) == [("nova/volume.py", 3), ("nova/volume.py", 13)]
    assert reviews_of(gerrit, wip.number) == []
    assert len(reviews_of(gerrit, rebased.number)) == 1  # the trivial rebase is not reviewed again
    pages = [u for u in gerrit.request_urls if u.startswith("/a/changes/?")]
    starts = sorted(int(u.split("S=")[1].split("&")[0]) for u in pages[-3:])
    assert starts == [0, 2, 4], pages  # 5 open changes updated since the last event: 3 pages


async def test_stream_survives_an_unexpected_failure_and_health_reports_it(tmp_path, gerrit):
    """A catch-up answer the bot cannot read (here a 200 that is not JSON) must not end the
    stream task for good: it restarts with backoff, and the missed patch set is still reviewed."""
    settings = gerrit_settings(tmp_path, gerrit, stream_grace_seconds=0.3)
    async with running_service(settings) as (url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200, await resp.text()
            # The next catch-up gets garbage; the event of this patch set is lost.
            gerrit.fail_next("GET", r"^/a/changes/$", status=200, body="<html>proxy error</html>")
            live = gerrit.create_change(
                PROJECT, "master", gerrit.owner, "live", files={"nova/volume.py": HEAD}
            )
            await wait_until(lambda: reviews_of(gerrit, live.number), what="live review")
            assert gerrit.drop_streams() == 1
            change = gerrit.create_change(
                PROJECT, "master", gerrit.owner, "Missed", files={"nova/volume.py": HEAD}, emit=False
            )
            await wait_until(lambda: reviews_of(gerrit, change.number), timeout=30, what="catch-up review")
            await wait_idle(service)
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200, await resp.text()
    assert len(reviews_of(gerrit, change.number)) == 1


async def test_healthz_is_503_while_the_stream_is_down_past_its_grace(tmp_path, gerrit):
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    settings = gerrit_settings(tmp_path, gerrit, ssh_port=dead_port, stream_grace_seconds=0.3)
    async with running_service(settings) as (url, _service), aiohttp.ClientSession() as http:

        async def unhealthy() -> dict | None:
            async with http.get(f"{url}/healthz") as resp:
                return await resp.json() if resp.status == 503 else None

        body = await wait_until(unhealthy, timeout=10, what="/healthz 503")
        assert body["status"] == "unhealthy"
        assert "Gerrit event stream down for" in body["problems"][0]
        async with http.get(f"{url}/metrics") as resp:
            text = await resp.text()
        down = [
            line for line in text.splitlines() if line.startswith("patchwarden_gerrit_stream_down_seconds ")
        ]
        assert down and float(down[0].split()[1]) > 0.3


@pytest.mark.parametrize("lost_as", [502, None], ids=["502-after-apply", "connection-dropped"])
async def test_a_lost_review_answer_does_not_post_the_review_twice(tmp_path, gerrit, lost_as):
    """Set Review is not idempotent: after an ambiguous failure the bot looks for its run marker
    among the change's messages (rest-api-changes.txt "List Change Messages") before posting again."""
    gerrit.lose_answer("POST", r"/review$", status=lost_as)
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(PROJECT, "master", gerrit.owner, "x", files={"nova/volume.py": HEAD})
        await wait_until(lambda: jobs_done(service, 1), what="the job to finish")
        jobs = await service.queue.jobs()
    assert jobs[0]["state"] == "done", jobs
    assert len(scans(gerrit, change.number)) == 1
    messages = [m.message for m in gerrit.changes[change.number].messages if m.tag == TAG]
    assert len(messages) == 1 and messages[0].splitlines()[-1] == f"patchwarden-run: {jobs[0]['id']}"


async def test_kill_after_the_review_is_applied_then_restart_posts_nothing_more(tmp_path, gerrit):
    """`kill -9` of `patchwarden serve` between Gerrit applying the review and the job being
    marked done: the restarted process resumes the job, finds its marker and posts nothing."""
    change = gerrit.create_change(
        PROJECT, "master", gerrit.owner, "x", files={"nova/volume.py": HEAD}, emit=False
    )
    event = gerrit.patchset_created_event(change)
    release = asyncio.Event()
    gerrit.lose_answer("POST", r"/review$", status=None, hold=release)
    config, env = webhook_serve_setup(tmp_path, gerrit, server={"retry_base_delay": 0.2})
    first = ServeProcess(config, env)
    try:
        await first.wait_ready()
        async with aiohttp.ClientSession() as session:
            hook = first.url + "/webhooks/gerrit"
            async with session.post(hook, json=event, headers={"X-Patchwarden-Token": HOOK_SECRET}) as resp:
                assert resp.status == 202
        await wait_until(lambda: gerrit.reviews, what="the review to be applied")
        first.kill()
    finally:
        release.set()
        first.stop()
    second = ServeProcess(config, env)
    try:
        await second.wait_ready()
        await wait_until(lambda: served_queue(second.url, {"done": 1}), what="the resumed job to finish")
    finally:
        second.stop()
    assert len(scans(gerrit, change.number)) == 1


async def test_a_job_that_fails_for_good_says_so_on_the_change(tmp_path, gerrit):
    """No silent failure: past the opt-out check, a job that cannot finish posts a tagged message
    naming the reason, so the patchset does not look reviewed by silence."""
    settings = gerrit_settings(tmp_path, gerrit, event_source="webhook")
    async with running_service(settings) as (url, service):
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "x", files={"nova/volume.py": HEAD}, emit=False
        )
        gerrit.fail_next("GET", r"/files/nova%2Fvolume\.py/content$", status=403, body="read not permitted")
        async with aiohttp.ClientSession() as session:
            hook = url + "/webhooks/gerrit"
            event = gerrit.patchset_created_event(change)
            async with session.post(hook, json=event, headers={"X-Patchwarden-Token": HOOK_SECRET}) as resp:
                assert resp.status == 202
        await wait_until(lambda: reviews_of(gerrit, change.number), what="the failure message")
        await wait_idle(service)
    (report,) = reviews_of(gerrit, change.number)
    assert report["tag"] == TAG and report["notify"] == "OWNER" and "comments" not in report
    assert report["message"].startswith("Patchwarden could not review patchset 1: Gerrit 403 on GET")
    assert "Comment /rescan to try again." in report["message"]


async def jobs_done(service, count: int) -> bool:
    counts = await service.queue.counts()
    return counts.get("done", 0) == count and not counts.get("pending") and not counts.get("running")


async def served_queue(url: str, expected: dict[str, int]) -> bool:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as resp:
        counts = (await resp.json())["queue"]
    return all(counts.get(k, 0) == v for k, v in expected.items()) and not counts.get("running")


async def test_hostile_files_are_named_and_never_fail_the_review(tmp_path, gerrit):
    """Symlinks and submodules (FileContentUtil: ``x-git/symlink``, ``x-git/gitlink``), binary
    content, files over the size limit, names with ``..`` and non-UTF-8 text: the review of
    the rest goes out, and its summary names every file it did not read and why."""
    files = {
        "nova/volume.py": HEAD,
        "nova/link.py": Symlink(b"../../../../etc/passwd"),
        "nova/vendored.py": Gitlink(b"4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
        "nova/blob.py": b"\x00\x01binary\x00" * 10,
        "nova/huge.py": b"x = 1\n" * 1000,
        "nova/../../escape.py": b"import os\n",
        "nova/latin1.py": b"# caf\xe9\nimport os\n",
    }
    settings = make_settings(
        tmp_path,
        {
            "engine": {"max_file_bytes": 4000},
            "gerrit": gerrit_settings(tmp_path, gerrit).gerrit.model_dump(mode="json"),
        },
    )
    async with running_service(settings) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(PROJECT, "master", gerrit.owner, "hostile", files=files)
        await wait_until(lambda: scans(gerrit, change.number), what="the review")
        await wait_idle(service)
        jobs = await service.queue.jobs()
    assert [j["state"] for j in jobs] == ["done"]
    (review,) = scans(gerrit, change.number)
    message = review["message"]
    assert "nova/link.py: not reviewed: a symlink, not a file" in message
    assert "nova/vendored.py: not reviewed: a submodule, not a file" in message
    assert "nova/blob.py: not reviewed: binary content" in message
    assert (
        "nova/huge.py: not reviewed: 6,000 bytes is over the 4,000-byte limit (engine.max_file_bytes)"
        in message
    )
    assert "nova/../../escape.py: not reviewed: unsafe file name" in message
    # Not UTF-8 and no coding cookie: Python 3 cannot read it either; the analyzers say so.
    assert "ruff could not analyze nova/latin1.py" in message
    assert ("nova/volume.py", 13) in inline(review)
    assert not (tmp_path / "escape.py").exists()

"""GitHub end to end: review threads that follow the code, and triage with ``/ignore``: the real
service, real analyzers, real HTTP to the fake GitHub (REST and its GraphQL endpoint).

Doc sections modelled by the fake (tests/fakes/github_graphql.py): github/docs
``content/graphql/guides/forming-calls-with-graphql.md`` "Communicating with GraphQL";
``content/graphql/guides/using-pagination-in-the-graphql-api.md``; ``content/graphql/overview/
rate-limits-and-query-limits-for-the-graphql-api.md`` "Node limit"; the schema's
``resolveReviewThread`` / ``unresolveReviewThread`` / ``PullRequestReviewThread``; REST
"Get repository permissions for a user" (repos/get-collaborator-permission-level).
"""

from __future__ import annotations

import aiohttp
import pytest

from bot.metrics import REGISTRY
from bot.platforms.github_threads import RESOLVE_MUTATION, THREADS_QUERY, graphql_endpoint
from bot.render import VERDICT_CLEAN
from tests.fakes.github import FakeGitHub, generate_app_key
from tests.service import fixture, post_github, running_service, wait_idle
from tests.test_fake_github import APP_ID, INSTALLATION_ID, app_jwt
from tests.test_github_e2e import (
    BASE,
    FIXED,
    HEAD,
    REPO,
    TOKEN,
    opened_payload,
    pr_comment_payload,
    settings_for,
)

OWNER, NAME = REPO.split("/")


@pytest.fixture
async def github():
    async with FakeGitHub(token=TOKEN, token_kind="installation") as gh:
        yield gh


def failures(action: str) -> float:
    value = REGISTRY.get_sample_value(
        "patchwarden_thread_updates_total", {"platform": "github", "action": action, "outcome": "failed"}
    )
    return value or 0.0


def thread_root(gh: FakeGitHub, line: int) -> dict:
    return next(c for c in gh.review_comments if c["line"] == line and c.get("in_reply_to_id") is None)


async def push(url: str, service, gh: FakeGitHub, files: dict[str, bytes], sha: str, delivery: str) -> None:
    gh.push(OWNER, NAME, 2, files, sha)
    sync = fixture("github/pull_request.synchronize.json")
    sync["pull_request"]["head"]["sha"] = sync["after"] = sha
    assert (await post_github(url, "pull_request", sync, delivery))[0] == 202
    await wait_idle(service)


def ignore_reply(body: str, login: str, reply_to: int, comment_id: int) -> dict:
    """A reply on a review thread (pull_request_review_comment.created.2.json, with the
    documented ``in_reply_to_id`` of a reply)."""
    payload = fixture("github/pull_request_review_comment.created.2.json")
    payload["comment"].update(body=body, in_reply_to_id=reply_to, id=comment_id)
    payload["comment"]["user"].update(login=login, type="User")
    return payload


async def test_a_fixed_findings_thread_ends_resolved_and_reopens_when_it_returns(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "t-1"))[0] == 202
        await wait_idle(service)
        unused = thread_root(github, 3)
        assert github.graphql.mutations == [], "nothing to resolve on a first push"

        await push(url, service, github, {"net.py": FIXED}, "b" * 40, "t-2")
        assert [r["in_reply_to_id"] for r in github.replies] == [unused["id"]]
        assert github.graphql.resolved == {unused["id"]: github.bot_login}
        assert [m["name"] for m in github.graphql.mutations] == ["resolveReviewThread"]

        # The unused import comes back: a reply on the old thread, which is unresolved; no new thread.
        await push(url, service, github, {"net.py": HEAD}, "c" * 40, "t-3")
        roots = [c for c in github.review_comments if c.get("in_reply_to_id") is None]
        assert len(roots) == 2, "a returning finding opens no new thread"
        assert [r["body"].split(":")[0] for r in github.replies] == [
            f"Fixed in {'b' * 7}",
            f"Back in {'c' * 7}",
        ]
        assert github.graphql.resolved == {}
        assert [m["name"] for m in github.graphql.mutations] == [
            "resolveReviewThread",
            "unresolveReviewThread",
        ]

        # Fixed again: answered and resolved again (the last word on the thread is what counts).
        await push(url, service, github, {"net.py": FIXED}, "d" * 40, "t-4")
        assert len(github.replies) == 3 and github.replies[-1]["body"].startswith(f"Fixed in {'d' * 7}")
        assert github.graphql.resolved == {unused["id"]: github.bot_login}


async def test_a_graphql_failure_costs_neither_the_review_nor_the_reply(tmp_path, github):
    """GraphQL down (three 502s: the bot's retries run out), then an answer of HTTP 200 with only
    ``errors`` (how GraphQL reports a refusal): the reply is posted, the job is done, the thread
    stays open."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "g-1"))[0] == 202
        await wait_idle(service)
        failed_before = failures("read")
        github.fail_next("POST", r"^/graphql$", status=502, count=3)
        await push(url, service, github, {"net.py": FIXED}, "b" * 40, "g-2")
        assert len(github.replies) == 1 and github.graphql.resolved == {}
        forbidden = {"errors": [{"type": "FORBIDDEN", "message": "Resource not accessible by integration"}]}
        github.fail_next("POST", r"^/graphql$", status=200, body=forbidden)
        await push(url, service, github, {"net.py": BASE}, "c" * 40, "g-3")
        counts = await service.queue.counts()
    assert counts == {"done": 3}
    assert len(github.replies) == 2 and github.graphql.resolved == {}
    assert failures("read") == failed_before + 2, "each failure is counted"
    assert github.check_runs[-1]["status"] == "completed"


async def test_the_fakes_graphql_answers_as_documented(github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    first = github.add_review_comment(OWNER, NAME, 2, path="net.py", line=3, body="a")
    github.add_review_comment(OWNER, NAME, 2, path="net.py", line=12, body="b")
    endpoint = graphql_endpoint(github.url)
    assert graphql_endpoint("https://ghe.example/api/v3") == "https://ghe.example/api/graphql"
    headers = {"Authorization": f"token {TOKEN}", "User-Agent": "test"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call(query: str, status: int = 200, **variables) -> dict:
            async with session.post(endpoint, json={"query": query, "variables": variables}) as resp:
                assert resp.status == status
                return await resp.json()

        page = await call(THREADS_QUERY, owner=OWNER, name=NAME, number=2)
        threads = page["data"]["repository"]["pullRequest"]["reviewThreads"]
        assert threads["pageInfo"]["hasNextPage"] is False and len(threads["nodes"]) == 2
        assert threads["nodes"][0]["comments"]["nodes"] == [{"databaseId": first["id"]}]
        # Node limit: first/last required, 1-100.
        too_many = THREADS_QUERY.replace("first: 100", "first: 101")
        answer = await call(too_many, owner=OWNER, name=NAME, number=2)
        assert answer["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
        # An unknown node id: NOT_FOUND, with the path, in a 200.
        answer = await call(RESOLVE_MUTATION, threadId="PRRT_nope")
        assert answer["errors"][0]["type"] == "NOT_FOUND" and answer["errors"][0]["path"] == [
            "resolveReviewThread"
        ]
        assert answer["data"] == {"resolveReviewThread": None}
        # A field GitHub's schema does not have fails validation: errors and no data.
        answer = await call("query { viewer { nope } }")
        assert "data" not in answer and answer["errors"]
        node = threads["nodes"][0]["id"]
        answer = await call(RESOLVE_MUTATION, threadId=node)
        assert answer == {"data": {"resolveReviewThread": {"thread": {"id": node, "isResolved": True}}}}
    async with (
        aiohttp.ClientSession(headers={"Authorization": "token wrong", "User-Agent": "t"}) as session,
        session.post(endpoint, json={"query": THREADS_QUERY}) as resp,
    ):
        assert resp.status == 401


async def test_ignore_by_a_writer_suppresses_the_finding_on_the_next_push(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.set_role(OWNER, NAME, "maintainer", "write")
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "i-1"))[0] == 202
        await wait_idle(service)
        shell = thread_root(github, 12)

        # No reason: refused politely, on the thread.
        status, answer = await post_github(
            url, "pull_request_review_comment", ignore_reply("/ignore", "maintainer", shell["id"], 1), "i-2"
        )
        assert status == 200 and "reason is required" in answer["reason"]
        assert github.replies[-1]["body"].startswith(
            "@maintainer `/ignore` was not carried out: a reason is required"
        )

        body = "Not reachable: hosts come from our inventory.\n/ignore the host list is ours"
        status, answer = await post_github(
            url, "pull_request_review_comment", ignore_reply(body, "maintainer", shell["id"], 2), "i-3"
        )
        assert status == 200 and "recorded" in answer["reason"], answer
        confirm = github.replies[-1]
        assert confirm["in_reply_to_id"] == shell["id"] and "Ignored by @maintainer" in confirm["body"]
        assert "the host list is ours" in confirm["body"]
        assert github.graphql.resolved == {shell["id"]: github.bot_login}

        await push(url, service, github, {"net.py": b"# touched\n" + HEAD}, "b" * 40, "i-4")
        audit = await service.platforms["github"].triage.audit()
    summary = github.reviews[-1]["body"]
    assert summary.splitlines()[0] == VERDICT_CLEAN, "the ignored defect is not counted"
    assert "**Ignored by triage**" in summary and "ignored on this change by maintainer" in summary
    assert "the host list is ours" in summary
    assert github.reviews[-1]["comments"] == [] and len(github.replies) == 2, (
        "no 'fixed' reply on an ignored finding"
    )
    assert [(a.who, a.scope, a.reason, a.key) for a in audit] == [
        ("maintainer", "change", "the host list is ours", f"github:{REPO}#2")
    ]
    assert audit[0].fingerprint in shell["body"] and audit[0].when > 0


async def test_ignore_by_an_untrusted_user_is_refused_and_everywhere_needs_a_maintainer(tmp_path, github):
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    github.set_role(OWNER, NAME, "reader", "triage")
    github.set_role(OWNER, NAME, "writer", "write")
    github.set_role(OWNER, NAME, "lead", "maintain")
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "u-1"))[0] == 202
        await wait_idle(service)
        shell, unused = thread_root(github, 12), thread_root(github, 3)
        attempts = [
            ("/ignore looks fine to me", "drive-by", shell["id"]),
            ("/ignore triage can", "reader", shell["id"]),
            ("/ignore --everywhere it is a test helper", "writer", unused["id"]),
            ("/ignore I said it is fine", "drive-by", shell["id"]),  # answered again: never silence
        ]
        for index, (body, login, reply_to) in enumerate(attempts):
            status, answer = await post_github(
                url,
                "pull_request_review_comment",
                ignore_reply(body, login, reply_to, 10 + index),
                f"u-2-{index}",
            )
            assert status == 200 and "refused" in answer["reason"], answer
        refusals = [r["body"] for r in github.replies]
        assert len(refusals) == 4 and all("was not carried out" in r for r in refusals)
        assert "write permission" in refusals[0] and "maintain or admin" in refusals[2]
        assert await service.platforms["github"].triage.audit() == []

        # In the conversation rather than on the thread: told where /ignore goes.
        status, answer = await post_github(
            url, "issue_comment", pr_comment_payload("/ignore all of it", "lead", "MEMBER"), "u-conv"
        )
        assert status == 200 and "refused" in answer["reason"]
        assert github.issue_comments[-1]["body"].startswith(
            "@lead `/ignore` was not carried out: `/ignore <reason>` goes"
        )

        status, answer = await post_github(
            url, "pull_request_review_comment",
            ignore_reply("/ignore --everywhere re-exported on purpose", "lead", unused["id"], 20), "u-3",
        )  # fmt: skip
        assert "recorded (repository)" in answer["reason"]
        await push(url, service, github, {"net.py": b"# touched\n" + HEAD}, "b" * 40, "u-4")
    summary = github.reviews[-1]["body"]
    assert summary.splitlines()[0].startswith("1 security defect"), "the shell call is still reported"
    assert "ignored in this repository by lead" in summary


async def test_the_fakes_graphql_refuses_a_mutation_without_pull_request_write():
    """An installation whose permissions give pull requests ``read``: the thread can be read but
    ``resolveReviewThread`` answers HTTP 200 with ``type: FORBIDDEN`` and changes nothing."""
    private_pem, _ = generate_app_key()
    async with FakeGitHub(app_id=APP_ID, app_private_key_pem=private_pem) as gh:
        gh.add_pull_from_payload(
            fixture("github/pull_request.opened.2.json"), {"net.py": BASE}, {"net.py": HEAD}
        )
        gh.add_installation(
            INSTALLATION_ID, [REPO], permissions={"pull_requests": "read", "metadata": "read"}
        )
        gh.add_review_comment(OWNER, NAME, 2, path="net.py", line=3, body="a")
        async with aiohttp.ClientSession(headers={"User-Agent": "test"}) as session:
            url = f"{gh.url}/app/installations/{INSTALLATION_ID}/access_tokens"
            async with session.post(url, headers={"Authorization": f"Bearer {app_jwt(private_pem)}"}) as resp:
                token = (await resp.json())["token"]
            headers = {"Authorization": f"token {token}"}
            variables = {"owner": OWNER, "name": NAME, "number": 2}
            async with session.post(
                graphql_endpoint(gh.url),
                json={"query": THREADS_QUERY, "variables": variables},
                headers=headers,
            ) as resp:
                node = (await resp.json())["data"]["repository"]["pullRequest"]["reviewThreads"]["nodes"][0]
            body = {"query": RESOLVE_MUTATION, "variables": {"threadId": node["id"]}}
            async with session.post(graphql_endpoint(gh.url), json=body, headers=headers) as resp:
                assert resp.status == 200
                answer = await resp.json()
    assert answer["errors"][0]["type"] == "FORBIDDEN" and answer["data"] == {"resolveReviewThread": None}
    assert gh.graphql.resolved == {} and gh.graphql.mutations == []

"""Review threads that follow the code, on GitHub: resolve the thread of a finding that is gone,
unresolve it when the finding is back. The REST API cannot; GraphQL can (``resolveReviewThread``,
``unresolveReviewThread``), given the thread's node id, read from ``pullRequest.reviewThreads``
and matched to the bot's comment by the first comment's ``databaseId`` (the REST ``id``).

gidgethub's ``graphql()`` posts to one endpoint outside the REST client's retrying hooks, so the
calls here are paced like any content-creating request and retried on 5xx and broken
connections (resolving is idempotent). Nothing here may cost the review: a failure is logged
and counted, and the thread stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from gidgethub import GitHubBroken, GitHubException
from gidgethub.abc import GitHubAPI

from bot import metrics
from bot.platforms.retrying import policy

log = logging.getLogger(__name__)

#: Pages of 100 threads (GraphQL's node limit), at most this many pages.
MAX_PAGES = 30

THREADS_QUERY = """
query PatchwardenReviewThreads($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        pageInfo { hasNextPage endCursor }
        nodes { id isResolved comments(first: 1) { nodes { databaseId } } }
      }
    }
  }
}
"""
RESOLVE_MUTATION = """
mutation PatchwardenResolveThread($threadId: ID!) {
  resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""
UNRESOLVE_MUTATION = """
mutation PatchwardenUnresolveThread($threadId: ID!) {
  unresolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""


@dataclass(frozen=True)
class ThreadState:
    id: str  # the thread's node id
    resolved: bool


def graphql_endpoint(api_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST base URL: ``https://api.github.com/graphql``; on
    GitHub Enterprise Server ``https://HOST/api/graphql`` for ``https://HOST/api/v3``."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("v3")] + "graphql"
    return base + "/graphql"


async def _call(gh: GitHubAPI, endpoint: str, query: str, **variables: Any) -> Any:
    pacer = getattr(gh, "pacer", None)
    async for attempt in policy(3, 0.5, retry_on=(GitHubBroken, aiohttp.ClientError, TimeoutError)):
        with attempt:
            if pacer is not None:
                await pacer.wait()  # GitHub counts GraphQL POSTs against the secondary limits too
            return await gh.graphql(query, endpoint=endpoint, **variables)
    raise AssertionError("unreachable")  # pragma: no cover


async def thread_states(gh: GitHubAPI, endpoint: str, repo: str, number: int) -> dict[int, ThreadState]:
    """The pull request's review threads by the REST id of their first comment."""
    owner, name = repo.split("/", 1)
    states: dict[int, ThreadState] = {}
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        data = await _call(gh, endpoint, THREADS_QUERY, owner=owner, name=name, number=number, cursor=cursor)
        threads = data["repository"]["pullRequest"]["reviewThreads"]
        for node in threads["nodes"] or []:
            first = (node.get("comments") or {}).get("nodes") or []
            if first and isinstance(first[0].get("databaseId"), int):
                states[first[0]["databaseId"]] = ThreadState(node["id"], bool(node["isResolved"]))
        if not threads["pageInfo"]["hasNextPage"]:
            break
        cursor = threads["pageInfo"]["endCursor"]
    return states


async def follow(
    gh: GitHubAPI,
    endpoint: str,
    repo: str,
    number: int,
    resolve: Iterable[int] = (),
    unresolve: Iterable[int] = (),
) -> None:
    """Resolve the threads of the comments ``resolve`` (REST ids of their first comments), unresolve
    those of ``unresolve``. Never raises: what fails is logged and counted, the thread stays."""
    wanted = [(comment_id, True) for comment_id in resolve] + [
        (comment_id, False) for comment_id in unresolve
    ]
    if not wanted:
        return
    try:
        states = await thread_states(gh, endpoint, repo, number)
    except (GitHubException, aiohttp.ClientError, TimeoutError, KeyError, TypeError) as exc:
        log.warning("could not read the review threads of %s#%d: %r", repo, number, exc)
        metrics.THREAD_UPDATES.labels("github", "read", "failed").inc()
        return
    for comment_id, resolved in wanted:
        action = "resolve" if resolved else "unresolve"
        state = states.get(comment_id)
        if state is None:
            log.warning("%s#%d: no review thread starts with comment %d", repo, number, comment_id)
            metrics.THREAD_UPDATES.labels("github", action, "failed").inc()
            continue
        if state.resolved == resolved:
            continue
        try:
            await _call(gh, endpoint, RESOLVE_MUTATION if resolved else UNRESOLVE_MUTATION, threadId=state.id)
        except (GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "could not %s the thread of comment %d on %s#%d: %r", action, comment_id, repo, number, exc
            )
            metrics.THREAD_UPDATES.labels("github", action, "failed").inc()
        else:
            metrics.THREAD_UPDATES.labels("github", action, "done").inc()

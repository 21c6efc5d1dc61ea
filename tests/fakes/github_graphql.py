"""The fake GitHub's GraphQL endpoint (``POST /graphql``): a real GraphQL executor (graphql-core)
over the part of GitHub's schema the bot touches, so a query with a field, argument or type
GitHub does not have fails validation here as it would there.

Sources (github/docs): ``content/graphql/guides/forming-calls-with-graphql.md`` ("Communicating
with GraphQL": one endpoint, ``POST`` a JSON body with ``query`` and ``variables``; "Authenticating
with GraphQL"); ``content/graphql/guides/using-pagination-in-the-graphql-api.md`` (``pageInfo``
``hasNextPage`` / ``endCursor``, ``after``); ``content/graphql/overview/
rate-limits-and-query-limits-for-the-graphql-api.md`` ("Node limit": ``first`` or ``last`` on every
connection, within 1-100); the schema ``src/graphql/data/fpt/schema.docs.graphql``
(``resolveReviewThread`` / ``unresolveReviewThread`` "Marks a review thread as resolved /
unresolved", ``ResolveReviewThreadInput.threadId: ID!``, ``PullRequest.reviewThreads``,
``PullRequestReviewThread`` ``id isResolved isOutdated path resolvedBy viewerCanResolve
viewerCanUnresolve comments``, ``PullRequestReviewComment.databaseId``).

Answers are HTTP 200 with ``{"data": ...}``; errors are HTTP 200 with ``{"errors": [{"type",
"message", "path", "locations"}]}`` (``type`` ``NOT_FOUND`` for an unknown node id, ``FORBIDDEN``
without pull-request write access, ``MISSING_PAGINATION_BOUNDARIES`` / ``EXCESSIVE_PAGINATION``
for the node limit); a request without valid credentials is 401 before any of that (the REST
middleware's ``Bad credentials``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, build_schema, graphql

SDL = '''
"""The query root of GitHub's GraphQL interface."""
type Query {
  """Lookup a given repository by the owner and repository name."""
  repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
  """Fetches an object given its ID."""
  node(id: ID!): Node
}
"""The root query for implementing GraphQL mutations."""
type Mutation {
  """Marks a review thread as resolved."""
  resolveReviewThread(input: ResolveReviewThreadInput!): ResolveReviewThreadPayload
  """Marks a review thread as unresolved."""
  unresolveReviewThread(input: UnresolveReviewThreadInput!): UnresolveReviewThreadPayload
}
interface Node { id: ID! }
interface Actor { login: String! }
type User implements Node & Actor { id: ID! login: String! }
type Bot implements Node & Actor { id: ID! login: String! }
type Repository implements Node {
  id: ID!
  nameWithOwner: String!
  """Returns a single pull request from the current repository by number."""
  pullRequest(number: Int!): PullRequest
}
type PullRequest implements Node {
  id: ID!
  number: Int!
  """The list of all review threads for this pull request."""
  reviewThreads(after: String, before: String, first: Int, last: Int): PullRequestReviewThreadConnection!
}
type PageInfo { endCursor: String hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String }
type PullRequestReviewThreadConnection {
  nodes: [PullRequestReviewThread]
  edges: [PullRequestReviewThreadEdge]
  pageInfo: PageInfo!
  totalCount: Int!
}
type PullRequestReviewThreadEdge { cursor: String! node: PullRequestReviewThread }
"""A threaded list of comments for a given pull request."""
type PullRequestReviewThread implements Node {
  id: ID!
  isResolved: Boolean!
  isOutdated: Boolean!
  path: String!
  line: Int
  resolvedBy: User
  viewerCanResolve: Boolean!
  viewerCanUnresolve: Boolean!
  comments(after: String, before: String, first: Int, last: Int, skip: Int): PullRequestReviewCommentConnection!
}
type PullRequestReviewCommentConnection {
  nodes: [PullRequestReviewComment]
  pageInfo: PageInfo!
  totalCount: Int!
}
type PullRequestReviewComment implements Node {
  id: ID!
  """Identifies the primary key from the database."""
  databaseId: Int
  body: String!
  author: Actor
}
input ResolveReviewThreadInput { clientMutationId: String threadId: ID! }
input UnresolveReviewThreadInput { clientMutationId: String threadId: ID! }
type ResolveReviewThreadPayload { clientMutationId: String thread: PullRequestReviewThread }
type UnresolveReviewThreadPayload { clientMutationId: String thread: PullRequestReviewThread }
'''

SCHEMA = build_schema(SDL)


class TypedError(GraphQLError):
    """A resolver's refusal with GitHub's top-level ``type``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode().rstrip("=")


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _page(items: list[Any], args: dict[str, Any], connection: str) -> tuple[list[Any], dict[str, Any], int]:
    """A connection page by ``first``/``after`` or ``last``/``before``, with the node limit."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise TypedError(
            "MISSING_PAGINATION_BOUNDARIES",
            f"You must provide a `first` or `last` value to properly paginate the `{connection}` connection.",
        )
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 1 <= value <= 100:
            raise TypedError(
                "EXCESSIVE_PAGINATION" if value > 100 else "INVALID_PAGINATION",
                f"Requesting {value} records on the `{connection}` connection exceeds the `{name}` limit of 100 records."
                if value > 100
                else f"`{name}` on the `{connection}` connection cannot be less than one.",
            )
    start = 0
    if args.get("after"):
        try:
            start = int(base64.b64decode(args["after"]).decode().rsplit(":", 1)[1]) + 1
        except (ValueError, IndexError) as exc:
            raise TypedError(
                "INVALID_CURSOR_ARGUMENTS", f"`{args['after']}` does not appear to be a valid cursor."
            ) from exc
    stop = len(items)
    if first is not None:
        stop = min(stop, start + first)
    else:
        start = max(start, stop - last)
    page = items[start:stop]
    info = {
        "hasNextPage": stop < len(items),
        "hasPreviousPage": start > 0,
        "startCursor": _cursor(start) if page else None,
        "endCursor": _cursor(stop - 1) if page else None,
    }
    return page, info, start


class GraphQLEndpoint:
    """Review threads of the fake's pull requests: a thread is a top-level review comment and its
    replies; ``resolved`` maps the root comment id to who resolved it."""

    def __init__(self, fake: Any, access: Callable[[str], str]) -> None:
        """``fake``: the FakeGitHub whose review comments and pull requests are served;
        ``access(full_name)``: what the request's credential may do there (none, read, write)."""
        self._fake = fake
        self._access = access
        self.resolved: dict[int, str] = {}
        self.mutations: list[dict[str, Any]] = []  # each mutation applied: name, thread (root id), viewer

    def _comments(self) -> list[dict[str, Any]]:
        return self._fake.review_comments

    # -- resolvers -------------------------------------------------------------------------
    def _thread(self, root: dict[str, Any]) -> dict[str, Any]:
        replies = [c for c in self._comments() if c.get("in_reply_to_id") == root["id"]]
        comments = [root, *replies]
        resolver = self.resolved.get(root["id"])
        writable = self._access(root["repository"]) == "write"
        pull = self._fake.pull(*root["repository"].split("/"), root["pull_number"])
        return {
            "id": node_id("PullRequestReviewThread", root["id"]),
            "isResolved": resolver is not None,
            "isOutdated": root.get("commit_id") != pull.head_sha,
            "path": root["path"],
            "line": root.get("line"),
            "resolvedBy": {"id": node_id("User", 1), "login": resolver} if resolver else None,
            "viewerCanResolve": writable and resolver is None,
            "viewerCanUnresolve": writable and resolver is not None,
            "comments": lambda info, **args: self._comment_page(comments, args),
            "__typename": "PullRequestReviewThread",
        }

    def _comment_page(self, comments: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        page, info, _ = _page(comments, args, "comments")
        nodes = [
            {
                "id": c["node_id"],
                "databaseId": c["id"],
                "body": c["body"],
                "author": {
                    "login": c["user"]["login"],
                    "__typename": "Bot" if c["user"]["type"] == "Bot" else "User",
                },
            }
            for c in page
        ]
        return {"nodes": nodes, "pageInfo": info, "totalCount": len(comments)}

    def _threads(self, full_name: str, number: int, args: dict[str, Any]) -> dict[str, Any]:
        roots = [
            c
            for c in self._comments()
            if c["repository"] == full_name and c["pull_number"] == number and c.get("in_reply_to_id") is None
        ]
        page, info, start = _page(roots, args, "reviewThreads")
        nodes = [self._thread(c) for c in page]
        edges = [{"cursor": _cursor(start + i), "node": n} for i, n in enumerate(nodes)]
        return {"nodes": nodes, "edges": edges, "pageInfo": info, "totalCount": len(roots)}

    def _repository(self, owner: str, name: str) -> dict[str, Any]:
        repository = self._fake._repos.get(f"{owner}/{name}".lower())
        if repository is None or self._access(repository.full_name) == "none":
            raise TypedError(
                "NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'."
            )

        def pull_request(info: Any, number: int) -> dict[str, Any] | None:
            if number not in repository.pulls:
                raise TypedError(
                    "NOT_FOUND", f"Could not resolve to a PullRequest with the number of {number}."
                )
            return {
                "id": node_id("PullRequest", number),
                "number": number,
                "reviewThreads": lambda info, **args: self._threads(repository.full_name, number, args),
            }

        return {
            "id": node_id("Repository", 1),
            "nameWithOwner": repository.full_name,
            "pullRequest": pull_request,
        }

    def _set_resolved(self, name: str, resolved: bool, thread_id: str) -> dict[str, Any]:
        root = next(
            (c for c in self._comments() if c.get("in_reply_to_id") is None
             and node_id("PullRequestReviewThread", c["id"]) == thread_id),
            None,
        )  # fmt: skip
        access = "none" if root is None else self._access(root["repository"])
        if root is None or access == "none":
            raise TypedError("NOT_FOUND", f"Could not resolve to a node with the global id of '{thread_id}'")
        if access != "write":
            raise TypedError("FORBIDDEN", "Resource not accessible by integration")
        viewer = self._fake.bot_login
        if resolved:
            self.resolved.setdefault(root["id"], viewer)
        else:
            self.resolved.pop(root["id"], None)
        self.mutations.append({"name": name, "thread": root["id"], "viewer": viewer})
        return {"thread": self._thread(root)}

    async def execute(self, body: Any) -> dict[str, Any]:
        """The JSON answer to one POST body (served with HTTP 200)."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"errors": [{"message": "A query attribute must be specified and must be a string."}]}
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return {"errors": [{"message": "Variables are invalid JSON."}]}
        root = {
            "repository": lambda info, owner, name, **_: self._repository(owner, name),
            "resolveReviewThread": lambda info, input: self._set_resolved(
                "resolveReviewThread", True, input["threadId"]
            ),
            "unresolveReviewThread": lambda info, input: self._set_resolved(
                "unresolveReviewThread", False, input["threadId"]
            ),
        }
        result = await graphql(
            SCHEMA,
            body["query"],
            root_value=root,
            variable_values=variables,
            operation_name=body.get("operationName"),
            field_resolver=_resolve,
            type_resolver=lambda value, info, type_: value.get("__typename", "User"),
        )
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [_error(e) for e in result.errors]
        if result.data is not None or not result.errors:
            answer["data"] = result.data
        return answer


def _resolve(source: Any, info: Any, **args: Any) -> Any:
    """Dict fields; a callable field gets ``info`` and the arguments."""
    value = (
        source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
    )
    return value(info, **args) if callable(value) else value


def _error(error: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {}
    original = error.original_error if isinstance(error.original_error, TypedError) else error
    if isinstance(original, TypedError):
        out["type"] = original.kind
    if error.path is not None:
        out["path"] = list(error.path)
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    out["message"] = error.message
    return out

"""Tests of the fake GitHub REST API itself (tests/fakes/github.py), over real HTTP.

Each test of a documented behaviour names its source in its docstring: ``REST`` is the OpenAPI
description, github/rest-api-description ``descriptions/api.github.com/api.github.com.yaml``
(operation summary and operationId), ``DOCS`` the prose of github/docs (file and heading).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import pytest_asyncio

from tests.fakes.github import (
    FakeGitHub,
    Submodule,
    Symlink,
    compute_files,
    generate_app_key,
    git_blob_sha,
)

FIXTURES = Path(__file__).parent / "fixtures" / "github"
OWNER, REPO = "Codertocat", "Hello-World"  # the repository of pull_request.opened.2.json
PR = f"/repos/{OWNER}/{REPO}/pulls/2"
TOKEN = "static-test-token"
APP_ID = 4242
INSTALLATION_ID = 1  # installation.id of pull_request.opened.2.json

BASE_FILES = {
    "app.py": b"import os\n\n\ndef main():\n    print('hello')\n    return 0\n",
    "gone.txt": b"bye\n",
    "old_name.py": b"".join(b"line %d\n" % i for i in range(20)),
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0old",
    "notes.md": b"# Notes\n",
}
HEAD_FILES = {
    "app.py": b"import os\nimport subprocess\n\n\ndef main():\n    print('hello')\n    subprocess.call(os.environ['CMD'], shell=True)\n    return 0\n",
    "new_name.py": b"".join(b"line %d\n" % i for i in range(20)).replace(b"line 7\n", b"line seven\n"),
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0new",
    "notes.md": b"# Notes\nno newline at the end",
    "added.py": b"x = 1\n",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def auth(token: str = TOKEN, scheme: str = "token") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def app_jwt(private_pem: bytes, *, iat_offset: int = -30, lifetime: int = 600, iss: object = APP_ID) -> str:
    """An app JWT; signed through PyJWS because PyJWT's ``encode`` refuses an integer ``iss``."""
    now = int(time.time())
    claims = {"iat": now + iat_offset, "exp": now + iat_offset + lifetime, "iss": iss}
    return jwt.PyJWS().encode(json.dumps(claims).encode(), private_pem, algorithm="RS256")


@pytest_asyncio.fixture
async def gh() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(token=TOKEN) as fake:
        fake.add_pull_from_payload(load("pull_request.opened.2.json"), BASE_FILES, HEAD_FILES)
        yield fake


@pytest_asyncio.fixture
async def http(gh: FakeGitHub) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gh.url) as session:
        yield session


# ---- auth ------------------------------------------------------------------------------------


async def test_missing_or_wrong_credentials_are_401(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST components/responses/requires_authentication (components/schemas/basic-error:
    ``message``, ``documentation_url``, ``status``) and the ``x-ratelimit-*`` headers of every answer."""
    for headers in ({}, auth("nope"), auth(TOKEN, scheme="Basic")):
        async with http.get(PR, headers=headers) as resp:
            assert resp.status == 401
            body = await resp.json()
            assert body["message"] == "Bad credentials"
            assert body["documentation_url"] == "https://docs.github.com/rest"
            for header in (
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "X-GitHub-Request-Id",
            ):
                assert header in resp.headers
    assert [r["status"] for r in gh.requests] == [401, 401, 401]


async def test_static_token_serves_the_payload_pull(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Get a pull request" (pulls/get): the pull request, whose ``changed_files``,
    ``additions``, ``deletions`` and ``commits`` describe its diff (here: the fake's own)."""
    payload = load("pull_request.opened.2.json")["pull_request"]
    for scheme in ("token", "Bearer"):
        async with http.get(PR, headers=auth(scheme=scheme)) as resp:
            assert resp.status == 200
            pull = await resp.json()
    counts = {"changed_files": 6, "additions": 5, "deletions": 2, "commits": 1}
    assert pull == {**payload, **counts}
    assert gh.requests[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert int(resp.headers["X-RateLimit-Remaining"]) == gh.rate_limit - 2


async def test_jwt_exchange_then_installation_token() -> None:
    """REST "Create an installation access token for an app"
    (apps/create-installation-access-token): 201 with ``token`` and ``expires_at``, app JWT only;
    DOCS content/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app.md."""
    private_pem, _ = generate_app_key()
    async with (
        FakeGitHub(app_id=APP_ID, app_private_key_pem=private_pem) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
    ):
        gh.add_pull_from_payload(load("pull_request.opened.2.json"), BASE_FILES, HEAD_FILES)
        token_url = f"/app/installations/{INSTALLATION_ID}/access_tokens"
        async with http.post(token_url, headers=auth(app_jwt(private_pem), "Bearer")) as resp:
            assert resp.status == 201
            issued = await resp.json()
        assert issued["token"].startswith("ghs_")
        assert set(issued) >= {"token", "expires_at", "permissions"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", issued["expires_at"])
        assert gh.token_exchanges[0]["installation_id"] == INSTALLATION_ID
        assert gh.token_exchanges[0]["claims"]["iss"] == APP_ID

        async with http.get(PR, headers=auth(issued["token"])) as resp:
            assert resp.status == 200

        # The JWT is for the app endpoints only; the installation token is not for them.
        async with http.get(PR, headers=auth(app_jwt(private_pem), "Bearer")) as resp:
            assert resp.status == 401
        async with http.post(token_url, headers=auth(issued["token"], "Bearer")) as resp:
            assert resp.status == 401

        # Unknown installation.
        async with http.post(
            "/app/installations/999/access_tokens", headers=auth(app_jwt(private_pem), "Bearer")
        ) as resp:
            assert resp.status == 404

        # Expired installation tokens are bad credentials.
        gh.expire_tokens()
        async with http.get(PR, headers=auth(issued["token"])) as resp:
            assert resp.status == 401


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lifetime": 660}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iat_offset": -700}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"iat_offset": 120}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iss": "1"}, "Integration not found"),
        ({"iss": str(APP_ID)}, None),  # iss as a string is fine
    ],
)
async def test_jwt_claims_are_checked(kwargs: dict[str, Any], message: str | None) -> None:
    private_pem, _ = generate_app_key()
    async with (
        FakeGitHub(app_id=APP_ID, app_private_key_pem=private_pem) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
        http.get("/app", headers=auth(app_jwt(private_pem, **kwargs), "Bearer")) as resp,
    ):
        body = await resp.json()
        if message is None:
            assert resp.status == 200
            assert body["slug"] == "patchwarden"
        else:
            assert resp.status == 401
            assert body["message"].startswith(message)


async def test_jwt_signed_by_another_key_is_401() -> None:
    private_pem, _ = generate_app_key()
    other_pem, _ = generate_app_key()
    async with (
        FakeGitHub(app_id=APP_ID, app_private_key_pem=private_pem) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
        http.get("/app", headers=auth(app_jwt(other_pem), "Bearer")) as resp,
    ):
        assert resp.status == 401
        assert (await resp.json())["message"] == "A JSON web token could not be decoded"


async def test_installation_token_is_404_on_another_installations_repo() -> None:
    private_pem, _ = generate_app_key()
    other = load("check_run.rerequested.1.json")  # github/hello-world
    async with (
        FakeGitHub(app_id=APP_ID, app_private_key_pem=private_pem, token=TOKEN) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
    ):
        gh.add_pull_from_payload(load("pull_request.opened.2.json"), BASE_FILES, HEAD_FILES)
        gh.add_repository(other["repository"], installation_id=77)
        gh.add_commit("github", "hello-world", other["check_run"]["head_sha"], {"README.md": b"hi\n"})
        async with http.post(
            f"/app/installations/{INSTALLATION_ID}/access_tokens",
            headers=auth(app_jwt(private_pem), "Bearer"),
        ) as resp:
            token = (await resp.json())["token"]
        readme = "/repos/github/hello-world/contents/README.md"
        async with http.get(
            readme, params={"ref": other["check_run"]["head_sha"]}, headers=auth(token)
        ) as resp:
            assert resp.status == 404
        async with http.get(readme, params={"ref": other["check_run"]["head_sha"]}, headers=auth()) as resp:
            assert resp.status == 200  # the static token sees every repository
        async with http.get(
            "/repos/github/hello-world/installation", headers=auth(app_jwt(private_pem), "Bearer")
        ) as resp:
            assert (await resp.json())["id"] == 77


async def test_user_agent_is_required(gh: FakeGitHub) -> None:
    async with (
        aiohttp.ClientSession(base_url=gh.url, skip_auto_headers=["User-Agent"]) as http,
        http.get(PR, headers=auth()) as resp,
    ):
        assert resp.status == 403


# ---- files and diffs ------------------------------------------------------------------------


async def test_files_are_paginated_with_link_headers(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "List pull requests files" (pulls/list-files): paginated with ``Link`` headers
    (components/headers/link); DOCS content/rest/using-the-rest-api/using-pagination-in-the-rest-api.md."""
    gh.max_per_page = 2
    url: str | None = f"{gh.url}{PR}/files?per_page=100"
    pages: list[list[dict[str, Any]]] = []
    links: list[str] = []
    while url:
        async with http.get(url, headers=auth()) as resp:
            assert resp.status == 200
            pages.append(await resp.json())
            links.append(resp.headers.get("Link", ""))
            url = str(resp.links["next"]["url"]) if "next" in resp.links else None
    assert [len(p) for p in pages] == [2, 2, 2]
    assert 'rel="next"' in links[0] and 'rel="last"' in links[0] and "page=3" in links[0]
    assert 'rel="prev"' in links[2] and 'rel="first"' in links[2] and 'rel="next"' not in links[2]

    files = {f["filename"]: f for page in pages for f in page}
    assert sorted(files) == ["added.py", "app.py", "gone.txt", "logo.png", "new_name.py", "notes.md"]
    assert {name: f["status"] for name, f in files.items()} == {
        "added.py": "added",
        "app.py": "modified",
        "gone.txt": "removed",
        "logo.png": "modified",
        "new_name.py": "renamed",
        "notes.md": "modified",
    }
    assert files["new_name.py"]["previous_filename"] == "old_name.py"
    assert "patch" not in files["logo.png"]  # binary
    assert files["app.py"]["sha"] == git_blob_sha(HEAD_FILES["app.py"])
    assert (files["app.py"]["additions"], files["app.py"]["deletions"], files["app.py"]["changes"]) == (
        2,
        0,
        2,
    )
    assert files["app.py"]["patch"] == (
        "@@ -1,6 +1,8 @@\n"
        " import os\n"
        "+import subprocess\n"
        " \n"
        " \n"
        " def main():\n"
        "     print('hello')\n"
        "+    subprocess.call(os.environ['CMD'], shell=True)\n"
        "     return 0"
    )
    assert files["added.py"]["patch"] == "@@ -0,0 +1 @@\n+x = 1"
    assert files["gone.txt"]["patch"] == "@@ -1 +0,0 @@\n-bye"
    assert files["notes.md"]["patch"] == (
        "@@ -1 +1,2 @@\n # Notes\n+no newline at the end\n\\ No newline at end of file"
    )

    # Past the last page: an empty list.
    async with http.get(f"{PR}/files", params={"page": "9"}, headers=auth()) as resp:
        assert await resp.json() == []


async def test_large_patches_are_omitted(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST components/schemas/diff-entry: ``patch`` is optional -- absent for large diffs and,
    as "Get a commit" (repos/get-commit) says, for "Diffs with binary data"."""
    gh.max_patch_bytes = 60
    async with http.get(f"{PR}/files", headers=auth()) as resp:
        files = {f["filename"]: f for f in await resp.json()}
    assert "patch" not in files["app.py"]
    assert files["added.py"]["patch"] == "@@ -0,0 +1 @@\n+x = 1"


def test_compute_files_hunks_renames_and_function_context() -> None:
    body = b"".join(b"    x%d = %d\n" % (i, i) for i in range(30))
    old = b"import os\n\n\ndef handler(event):\n" + body
    new = old.replace(b"    x20 = 20\n", b"    x20 = eval(event)\n")
    diffs = compute_files({"h.py": old, "same.txt": b"same\n"}, {"h.py": new, "same.txt": b"same\n"})
    assert [d.filename for d in diffs] == ["h.py"]  # unchanged files are not listed
    (diff,) = diffs
    assert diff.patch is not None
    assert diff.patch.splitlines()[0] == "@@ -22,7 +22,7 @@ def handler(event):"
    assert diff.hunks[0].lines("RIGHT") == frozenset(range(22, 29))
    assert diff.hunks[0].lines("LEFT") == frozenset(range(22, 29))

    # Two hunks far apart; a pure rename has no patch; a < 50 % similar pair is not a rename.
    many = b"".join(b"l%d\n" % i for i in range(40))
    diffs = compute_files(
        {"m.txt": many, "a.txt": b"same content\n", "x.txt": b"a\nb\nc\nd\n"},
        {
            "m.txt": many.replace(b"l2\n", b"L2\n").replace(b"l35\n", b"L35\n"),
            "b.txt": b"same content\n",
            "y.txt": b"w\nx\ny\nz\n",
        },
    )
    by_name = {d.filename: d for d in diffs}
    assert len(by_name["m.txt"].hunks) == 2
    # Hunk 1 has 7 rows (2 context, -, +, 3 context); hunk 2's header is position 8; new line 36 is its 5th row.
    assert by_name["m.txt"].position_of("RIGHT", 36) == 7 + 1 + 5
    assert by_name["m.txt"].row_at_position(13) == by_name["m.txt"].hunks[1].rows[4]
    assert by_name["m.txt"].row_at_position(8) is None  # a hunk header
    assert by_name["b.txt"].status == "renamed" and by_name["b.txt"].patch is None
    assert by_name["x.txt"].status == "removed" and by_name["y.txt"].status == "added"


# ---- reviews ---------------------------------------------------------------------------------


async def test_review_comment_outside_the_diff_is_422_and_nothing_is_recorded(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    """REST "Create a review for a pull request" (pulls/create-review): comments on ``line`` /
    ``side`` (``start_line`` / ``start_side`` for a range) must lie in the diff of ``commit_id``;
    422 (components/responses/validation_failed_simple) and nothing is created otherwise."""
    head = gh.pull(OWNER, REPO, 2).head_sha
    good = {"path": "app.py", "line": 7, "side": "RIGHT", "body": "shell=True"}
    bad_cases: list[tuple[dict[str, Any], str]] = [
        ({"path": "app.py", "line": 40, "body": "x"}, "line must be part of the diff"),
        ({"path": "not_in_pr.py", "line": 1, "body": "x"}, "path is invalid"),
        (
            {"path": "app.py", "line": 7, "start_line": 7, "body": "x"},
            "start line must precede the end line.",
        ),
        (
            {"path": "app.py", "line": 5, "start_line": 7, "body": "x"},
            "start line must precede the end line.",
        ),
        ({"path": "app.py", "line": 7, "position": 3, "body": "x"}, "position"),
        (
            {"path": "app.py", "line": 9, "side": "LEFT", "body": "x"},
            "line must be part of the diff",
        ),  # old: 6 lines
        ({"path": "logo.png", "line": 1, "body": "x"}, "line must be part of the diff"),  # binary: no hunks
    ]
    for bad, fragment in bad_cases:
        review = {"commit_id": head, "body": "Patchwarden", "event": "COMMENT", "comments": [good, bad]}
        async with http.post(f"{PR}/reviews", json=review, headers=auth()) as resp:
            assert resp.status == 422, bad
            error = await resp.json()
        assert error["message"] == "Unprocessable Entity"
        assert fragment in error["errors"][0], (bad, error)
    assert error["documentation_url"].startswith("https://docs.github.com/rest/pulls/reviews")

    async with http.post(
        f"{PR}/reviews", json={"commit_id": "0" * 40, "event": "COMMENT", "body": "x"}, headers=auth()
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["errors"] == ["The commitOID is not part of the pull request"]
    async with http.post(f"{PR}/reviews", json={"event": "COMMENT", "body": ""}, headers=auth()) as resp:
        assert resp.status == 422

    assert gh.reviews == []
    assert gh.review_comments == []


async def test_valid_review_is_recorded_and_listed(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST pulls/create-review (200 with the review), "List reviews for a pull request"
    (pulls/list-reviews, chronological) and "List review comments on a pull request"."""
    head = gh.pull(OWNER, REPO, 2).head_sha
    review = {
        "commit_id": head,
        "body": "Patchwarden found 1 issue.",
        "event": "COMMENT",
        "comments": [
            {"path": "app.py", "line": 7, "side": "RIGHT", "body": "`shell=True` with env input."},
            {
                "path": "app.py",
                "start_line": 5,
                "line": 7,
                "side": "RIGHT",
                "start_side": "RIGHT",
                "body": "range",
            },
            {"path": "gone.txt", "line": 1, "side": "LEFT", "body": "deleted line"},
            {"path": "app.py", "position": 2, "body": "the import"},
        ],
    }
    async with http.post(f"{PR}/reviews", json=review, headers=auth()) as resp:
        assert resp.status == 200
        created = await resp.json()
    assert created["state"] == "COMMENTED"
    assert created["commit_id"] == head
    assert created["user"]["login"] == gh.bot_login
    assert gh.reviews[0]["id"] == created["id"] and gh.reviews[0]["event"] == "COMMENT"

    comments = gh.review_comments
    assert [(c["path"], c["line"], c["side"], c["start_line"]) for c in comments] == [
        ("app.py", 7, "RIGHT", None),
        ("app.py", 7, "RIGHT", 5),
        ("gone.txt", 1, "LEFT", None),
        ("app.py", 2, "RIGHT", None),
    ]
    assert all(c["user"]["login"] == gh.bot_login and c["in_reply_to_id"] is None for c in comments)
    assert all(c["commit_id"] == head and c["pull_request_review_id"] == created["id"] for c in comments)
    assert comments[0]["diff_hunk"].endswith("+    subprocess.call(os.environ['CMD'], shell=True)")

    async with http.get(f"{PR}/comments", headers=auth()) as resp:
        listed = await resp.json()
    assert [c["id"] for c in listed] == [c["id"] for c in comments]
    assert "in_reply_to_id" not in listed[0] and "repository" not in listed[0]
    async with http.get(f"{PR}/reviews", headers=auth()) as resp:
        assert [r["id"] for r in await resp.json()] == [created["id"]]


async def test_push_keeps_old_head_and_reviews_follow_its_diff(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    old_head = gh.pull(OWNER, REPO, 2).head_sha
    new_files = {**HEAD_FILES, "app.py": HEAD_FILES["app.py"] + b"# trailing\n"}
    gh.push(OWNER, REPO, 2, new_files, "a" * 40)
    async with http.get(PR, headers=auth()) as resp:
        assert (await resp.json())["head"]["sha"] == "a" * 40
    async with http.get(
        f"/repos/{OWNER}/{REPO}/contents/app.py", params={"ref": old_head}, headers=auth()
    ) as resp:
        assert base64.b64decode((await resp.json())["content"]) == HEAD_FILES["app.py"]
    comment = {"path": "app.py", "line": 9, "body": "new line"}
    for commit, status in ((old_head, 422), ("a" * 40, 200)):
        review = {"commit_id": commit, "event": "COMMENT", "body": "b", "comments": [comment]}
        async with http.post(f"{PR}/reviews", json=review, headers=auth()) as resp:
            assert resp.status == status


async def test_replies(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Create a reply for a review comment" (pulls/create-reply-for-review-comment): 201;
    "This must be the ID of a top-level review comment ... Replies to replies are not supported."
    """
    human = gh.add_review_comment(OWNER, REPO, 2, path="app.py", line=7, body="why?", user_login="octocat")
    async with http.post(
        f"{PR}/comments/{human['id']}/replies", json={"body": "Because."}, headers=auth()
    ) as resp:
        assert resp.status == 201
        reply = await resp.json()
    assert reply["in_reply_to_id"] == human["id"]
    assert gh.replies[0]["body"] == "Because." and gh.replies[0]["user"]["login"] == gh.bot_login
    assert gh.review_comments[-1]["id"] == reply["id"]
    async with http.post(f"{PR}/comments/{reply['id']}/replies", json={"body": "x"}, headers=auth()) as resp:
        assert resp.status == 422  # replies to replies are not supported
    async with http.post(f"{PR}/comments/123/replies", json={"body": "x"}, headers=auth()) as resp:
        assert resp.status == 404
    with pytest.raises(ValueError, match="not part of the diff"):
        gh.add_review_comment(OWNER, REPO, 2, path="app.py", line=99, body="x")


# ---- contents --------------------------------------------------------------------------------


async def test_contents_base64_and_raw(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Get repository content" (repos/get-content): base64 ``content`` up to 1 MB,
    ``application/vnd.github.raw+json`` gives the bytes, ``ref`` defaults to the default branch,
    404 components/responses/not_found."""
    pull = gh.pull(OWNER, REPO, 2)
    config = b"fail_on: high\n" + b"# padding so the base64 wraps over several lines\n" * 3
    gh.set_branch_file(OWNER, REPO, pull.base_ref, ".patchwarden.yaml", config)
    url = f"/repos/{OWNER}/{REPO}/contents/.patchwarden.yaml"
    for ref in (pull.base_ref, pull.base_sha, None):  # None: the default branch (master)
        params = {"ref": ref} if ref else {}
        async with http.get(url, params=params, headers=auth()) as resp:
            assert resp.status == 200, ref
            data = await resp.json()
        assert data["type"] == "file" and data["encoding"] == "base64"
        assert data["path"] == ".patchwarden.yaml" and data["name"] == ".patchwarden.yaml"
        assert data["size"] == len(config) and data["sha"] == git_blob_sha(config)
        assert all(len(chunk) <= 60 for chunk in data["content"].split("\n"))
        assert data["content"].count("\n") > 1
        assert base64.b64decode(data["content"]) == config

    for accept in ("application/vnd.github.raw+json", "application/vnd.github.raw"):
        async with http.get(url, params={"ref": pull.base_ref}, headers={**auth(), "Accept": accept}) as resp:
            assert await resp.read() == config

    # Not on the head commit, and not part of the PR's files.
    async with http.get(url, params={"ref": pull.head_sha}, headers=auth()) as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == "Not Found"
    assert ".patchwarden.yaml" not in [f.filename for f in gh.files_of(OWNER, REPO, 2)]
    async with http.get(url, params={"ref": "no-such-branch"}, headers=auth()) as resp:
        assert resp.status == 404
    async with http.get(
        f"/repos/{OWNER}/{REPO}/contents/added.py", params={"ref": pull.head_sha}, headers=auth()
    ) as resp:
        assert base64.b64decode((await resp.json())["content"]) == b"x = 1\n"


# ---- failure injection -----------------------------------------------------------------------


async def test_fail_next_with_retry_after(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """DOCS content/rest/using-the-rest-api/rate-limits-for-the-rest-api.md, "Exceeding the rate
    limit": 403/429 with ``retry-after``, or ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``."""
    gh.fail_next("GET", r"/pulls/2$", 403, headers={"Retry-After": "1"})
    gh.fail_next("*", r"/files$", 502, count=2)
    async with http.get(PR, headers=auth()) as resp:
        assert resp.status == 403
        assert resp.headers["Retry-After"] == "1"
        assert "secondary rate limit" in (await resp.json())["message"]
    async with http.get(PR, headers=auth()) as resp:
        assert resp.status == 200
    statuses = []
    for _ in range(3):
        async with http.get(f"{PR}/files", headers=auth()) as resp:
            statuses.append(resp.status)
    assert statuses == [502, 502, 200]

    reset = str(int(time.time()) + 30)
    gh.fail_next(
        "POST", r"/reviews$", 403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    )
    async with http.post(f"{PR}/reviews", json={"event": "COMMENT", "body": "x"}, headers=auth()) as resp:
        assert resp.status == 403
        assert resp.headers["X-RateLimit-Remaining"] == "0" and resp.headers["X-RateLimit-Reset"] == reset
        assert "rate limit exceeded" in (await resp.json())["message"]
    assert gh.reviews == []


# ---- check runs, reactions, misc -------------------------------------------------------------


async def test_check_runs(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Create a check run" / "Update a check run" (checks/create, checks/update):
    ``conclusion`` required with ``status: completed``, ``stale`` is GitHub's alone, ``output``
    needs ``title`` and ``summary`` (at most 65535 characters), ``name`` and ``head_sha`` required."""
    gh.token_kind = "installation"  # only GitHub Apps write check runs
    head = gh.pull(OWNER, REPO, 2).head_sha
    url = f"/repos/{OWNER}/{REPO}/check-runs"
    async with http.post(
        url, json={"name": "Patchwarden", "head_sha": head, "status": "in_progress"}, headers=auth()
    ) as resp:
        assert resp.status == 201
        run = await resp.json()
    assert run["status"] == "in_progress" and run["pull_requests"][0]["number"] == 2

    for bad in (
        {"name": "P", "head_sha": head, "status": "completed"},
        {"name": "P", "head_sha": head, "conclusion": "stale"},
        {
            "name": "P",
            "head_sha": head,
            "conclusion": "success",
            "output": {"title": "t", "summary": "x" * 65536},
        },
        {"name": "P", "head_sha": head, "output": {"title": "t"}},
        {"name": "P", "head_sha": "f" * 40},
        {"head_sha": head},
    ):
        async with http.post(url, json=bad, headers=auth()) as resp:
            assert resp.status == 422, bad

    output = {"title": "1 finding", "summary": "summary", "text": "details"}
    async with http.patch(
        f"{url}/{run['id']}", json={"conclusion": "neutral", "output": output}, headers=auth()
    ) as resp:
        assert resp.status == 200
        updated = await resp.json()
    assert updated["status"] == "completed" and updated["conclusion"] == "neutral"
    assert len(gh.check_runs) == 1
    assert gh.check_runs[0]["output"]["summary"] == "summary" and gh.check_runs[0]["completed_at"]
    assert gh.check_run_updates == [{"id": run["id"], "conclusion": "neutral", "output": output}]
    async with http.patch(f"{url}/999", json={"status": "queued"}, headers=auth()) as resp:
        assert resp.status == 404


async def test_reactions_on_issue_comments(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Create reaction for an issue comment" (reactions/create-for-issue-comment): 201 for
    a new reaction, 200 when the user already added that one; ``content`` from a fixed list."""
    payload = load("issue_comment.created.4.json")
    comment = gh.add_issue_comment_from_payload(payload)
    url = f"/repos/{OWNER}/{REPO}/issues/comments/{comment['id']}/reactions"
    async with http.post(url, json={"content": "eyes"}, headers=auth()) as resp:
        assert resp.status == 201
        assert (await resp.json())["content"] == "eyes"
    async with http.post(url, json={"content": "eyes"}, headers=auth()) as resp:
        assert resp.status == 200  # the same reaction again
    async with http.post(url, json={"content": "thumbsup"}, headers=auth()) as resp:
        assert resp.status == 422
    async with http.post(
        f"/repos/{OWNER}/{REPO}/issues/comments/1/reactions", json={"content": "+1"}, headers=auth()
    ) as resp:
        assert resp.status == 404
    assert [(r["content"], r["comment_id"], r["user"]["login"]) for r in gh.reactions] == [
        ("eyes", comment["id"], gh.bot_login)
    ]


async def test_bad_json_unknown_routes_and_wrong_methods(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    headers = {**auth(), "Content-Type": "application/json"}
    async with http.post(f"{PR}/reviews", data=b"{not json", headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == "Problems parsing JSON"
    for method, path in (
        ("GET", "/nope"),
        ("DELETE", PR),
        ("POST", PR),
        ("GET", f"/repos/{OWNER}/other/pulls/2"),
    ):
        async with http.request(method, path, headers=auth()) as resp:
            assert resp.status == 404, (method, path)
            assert (await resp.json())["message"] == "Not Found"
            assert "X-GitHub-Request-Id" in resp.headers


# ---- documented shapes: contents, blobs, check runs, limits ----------------------------------

CONTENTS = f"/repos/{OWNER}/{REPO}/contents"


async def test_contents_size_tiers_and_media_types(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Get repository content" (repos/get-content), **Notes**: "1 MB or smaller: All
    features of this endpoint are supported. Between 1-100 MB: Only the raw or object custom media
    types are supported ... the content field will be an empty string and the encoding field will
    be "none". To get the contents of these larger files, use the raw media type. Greater than 100
    MB: This endpoint is not supported." (tiers lowered to 10 and 20 bytes here)."""
    gh.contents_inline_max, gh.blob_max_bytes = 10, 20
    head = gh.pull(OWNER, REPO, 2).head_sha
    medium, large = b"0123456789abcdef", b"x" * 21
    gh.push(OWNER, REPO, 2, {**HEAD_FILES, "medium.py": medium, "large.py": large}, "e" * 40)
    for accept in (None, "application/vnd.github.object+json", "application/vnd.github+json"):
        headers = {**auth(), **({"Accept": accept} if accept else {})}
        async with http.get(f"{CONTENTS}/medium.py", params={"ref": "e" * 40}, headers=headers) as resp:
            data = await resp.json()
        assert (data["type"], data["encoding"], data["content"], data["size"]) == ("file", "none", "", 16)
        assert data["sha"] == git_blob_sha(medium)
    raw = {**auth(), "Accept": "application/vnd.github.raw+json"}
    async with http.get(f"{CONTENTS}/medium.py", params={"ref": "e" * 40}, headers=raw) as resp:
        assert resp.status == 200 and await resp.read() == medium
    async with http.get(f"{CONTENTS}/large.py", params={"ref": "e" * 40}, headers=raw) as resp:
        assert resp.status == 403
        error = await resp.json()
    assert error["errors"][0]["code"] == "too_large" and error["status"] == "403"
    async with http.get(f"{CONTENTS}/added.py", params={"ref": head}, headers=auth()) as resp:
        assert (await resp.json())["encoding"] == "base64"  # 6 bytes: still inline


async def test_contents_of_directories_symlinks_and_submodules(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    """REST "Get repository content" (repos/get-content): a directory is a list ("submodules have
    their "type" specified as "file"" -- "submodule" from API version 2026-03-10), an object with
    ``entries`` for the object media type; "If the content is a symlink and the symlink's target is
    a normal file in the repository, then the API responds with the content of the file. Otherwise,
    the API responds with an object describing the symlink itself"; a submodule has
    ``submodule_git_url`` and the pinned commit as ``sha``, and null git/html URLs when it is not
    hosted on github.com. (The followed symlink's ``path`` and ``sha`` are the target's: the fake's
    reading; the description does not say.)"""
    files = {
        **HEAD_FILES,
        "lib/real.py": b"x = 1\n",
        "lib/link.py": Symlink("real.py"),
        "lib/up.py": Symlink("../app.py"),
        "lib/dangling.py": Symlink("gone.py"),
        "lib/outside.py": Symlink("../../etc/passwd"),
        "lib/dep": Submodule("c" * 40, "https://github.com/octocat/dep.git"),
        "lib/ext": Submodule("d" * 40, "https://git.example.org/ext.git"),
    }
    gh.push(OWNER, REPO, 2, files, "f" * 40)
    ref = {"ref": "f" * 40}

    async def get(path: str, **headers: str) -> Any:
        async with http.get(f"{CONTENTS}/{path}", params=ref, headers={**auth(), **headers}) as resp:
            assert resp.status == 200, path
            return await resp.json() if "raw" not in headers.get("Accept", "") else await resp.read()

    listing = await get("lib")
    assert {e["name"]: e["type"] for e in listing} == {
        "dangling.py": "symlink", "dep": "file", "ext": "file", "link.py": "symlink",
        "outside.py": "symlink", "real.py": "file", "up.py": "symlink",
    }  # fmt: skip
    newer = await get("lib", **{"X-GitHub-Api-Version": "2026-03-10"})
    assert {e["name"]: e["type"] for e in newer}["dep"] == "submodule"
    as_object = await get("lib", Accept="application/vnd.github.object")
    assert as_object["type"] == "dir" and [e["name"] for e in as_object["entries"]] == sorted(
        e["name"] for e in listing
    )

    followed = await get("lib/link.py")
    assert (followed["type"], followed["path"], base64.b64decode(followed["content"])) == (
        "file",
        "lib/real.py",
        b"x = 1\n",
    )
    assert (await get("lib/up.py"))["path"] == "app.py"
    for name, target in (("dangling.py", "gone.py"), ("outside.py", "../../etc/passwd")):
        link = await get(f"lib/{name}")
        assert (link["type"], link["target"], link["path"]) == ("symlink", target, f"lib/{name}")
        assert "content" not in link and link["sha"] == git_blob_sha(target.encode())
    assert await get("lib/dangling.py", Accept="application/vnd.github.raw") == b"gone.py"

    dep = await get("lib/dep")
    assert (dep["type"], dep["sha"], dep["submodule_git_url"]) == (
        "submodule",
        "c" * 40,
        "https://github.com/octocat/dep.git",
    )
    assert dep["git_url"] and dep["download_url"] is None
    ext = await get("lib/ext")
    assert ext["git_url"] is None and ext["html_url"] is None and ext["_links"]["git"] is None

    async with http.get(f"{CONTENTS}/lib/nope.py", params=ref, headers=auth()) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content",
        "status": "404",
    }


def test_symlinks_and_submodules_diff_like_git() -> None:
    """The pull request files of a symlink and a submodule: their git blobs (the target path, no
    final newline; ``Subproject commit <sha>``), and a submodule's ``sha`` is its commit."""
    diffs = {
        d.filename: d
        for d in compute_files(
            {"s": Submodule("a" * 40)}, {"l.py": Symlink("x.py"), "s": Submodule("b" * 40)}
        )
    }
    assert diffs["l.py"].patch == "@@ -0,0 +1 @@\n+x.py\n\\ No newline at end of file"
    assert diffs["l.py"].sha == git_blob_sha(b"x.py")
    assert diffs["s"].patch == f"@@ -1 +1 @@\n-Subproject commit {'a' * 40}\n+Subproject commit {'b' * 40}"
    assert diffs["s"].sha == "b" * 40


async def test_git_blobs(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Get a blob" (git/get-blob): "The content in the response will always be Base64
    encoded"; ``application/vnd.github.raw+json`` "Returns the raw blob data"; "This endpoint
    supports blobs up to 100 megabytes in size"; 404 for an unknown blob, 422 for a malformed sha."""
    content = HEAD_FILES["app.py"]
    url = f"/repos/{OWNER}/{REPO}/git/blobs/{git_blob_sha(content)}"
    async with http.get(url, headers=auth()) as resp:
        blob = await resp.json()
    assert (blob["encoding"], blob["size"], blob["sha"]) == ("base64", len(content), git_blob_sha(content))
    assert base64.b64decode(blob["content"]) == content
    async with http.get(url, headers={**auth(), "Accept": "application/vnd.github.raw+json"}) as resp:
        assert await resp.read() == content
    async with http.get(f"/repos/{OWNER}/{REPO}/git/blobs/{'0' * 40}", headers=auth()) as resp:
        assert resp.status == 404
    async with http.get(f"/repos/{OWNER}/{REPO}/git/blobs/not-a-sha", headers=auth()) as resp:
        assert resp.status == 422
    gh.blob_max_bytes = len(content) - 1
    async with http.get(url, headers=auth()) as resp:
        assert resp.status == 403 and (await resp.json())["errors"][0]["code"] == "too_large"


async def test_pull_files_are_capped_at_3000_and_100_per_page(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    """REST "List pull requests files" (pulls/list-files): "Responses include a maximum of 3000
    files. The paginated response returns 30 files per page by default"; components/parameters/
    per-page: "max 100" (cap lowered to 4 here)."""
    gh.pull_files_limit = 4
    async with http.get(f"{PR}/files", params={"per_page": "1000"}, headers=auth()) as resp:
        files = await resp.json()
        assert "Link" not in resp.headers
    assert len(files) == 4
    async with http.get(PR, headers=auth()) as resp:
        assert (await resp.json())["changed_files"] == 6  # the pull request still says how many


async def test_a_comment_review_needs_a_body_even_with_comments(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    """REST "Create a review for a pull request" (pulls/create-review), ``body``: "**Required**
    when using REQUEST_CHANGES or COMMENT for the event parameter." (stricter than what GitHub is
    known to accept when comments are present; the documented rule is the one modelled)."""
    comment = {"path": "app.py", "line": 7, "body": "x"}
    for event in ("COMMENT", "REQUEST_CHANGES"):
        async with http.post(
            f"{PR}/reviews", json={"event": event, "comments": [comment]}, headers=auth()
        ) as resp:
            assert resp.status == 422
    async with http.post(
        f"{PR}/reviews", json={"event": "COMMENT", "body": "b", "comments": [comment]}, headers=auth()
    ) as resp:
        assert resp.status == 200
    async with http.post(f"{PR}/reviews", json={"event": "APPROVE"}, headers=auth()) as resp:
        assert resp.status == 200


async def test_check_runs_are_for_github_apps_only(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """REST "Create a check run" (checks/create): "To create a check run, you must use a GitHub
    App. OAuth apps and authenticated users are not able to create a check suite"; "Update a check
    run" (checks/update): "OAuth apps and personal access tokens (classic) cannot use this
    endpoint." An installation token (an App's, or Actions' GITHUB_TOKEN) may; it has no GET /user."""
    head = gh.pull(OWNER, REPO, 2).head_sha
    url = f"/repos/{OWNER}/{REPO}/check-runs"
    async with http.post(url, json={"name": "p", "head_sha": head}, headers=auth()) as resp:
        assert resp.status == 403
        assert (await resp.json())["message"] == "You must authenticate via a GitHub App."
    async with http.get("/user", headers=auth()) as resp:
        assert resp.status == 200
    gh.token_kind = "installation"
    async with http.post(url, json={"name": "p", "head_sha": head}, headers=auth()) as resp:
        assert resp.status == 201
        run = await resp.json()
    gh.token_kind = "pat"
    async with http.patch(f"{url}/{run['id']}", json={"conclusion": "success"}, headers=auth()) as resp:
        assert resp.status == 403
    gh.token_kind = "installation"
    async with http.get("/user", headers=auth()) as resp:
        assert (
            resp.status == 403 and (await resp.json())["message"] == "Resource not accessible by integration"
        )


async def test_check_run_annotations_at_most_50_per_request(
    gh: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    """REST checks/create and checks/update, ``output.annotations``: "The Checks API limits the
    number of annotations to a maximum of 50 per API request ... annotations are appended";
    ``output.summary`` "**Maximum length**: 65535 characters"."""
    gh.token_kind = "installation"
    head = gh.pull(OWNER, REPO, 2).head_sha
    note = {"path": "app.py", "start_line": 7, "end_line": 7, "annotation_level": "warning", "message": "m"}
    url = f"/repos/{OWNER}/{REPO}/check-runs"
    output = {"title": "t", "summary": "s", "annotations": [note] * 51}
    async with http.post(url, json={"name": "p", "head_sha": head, "output": output}, headers=auth()) as resp:
        assert resp.status == 422
    output["annotations"] = [note] * 50
    async with http.post(url, json={"name": "p", "head_sha": head, "output": output}, headers=auth()) as resp:
        run = await resp.json()
    async with http.patch(f"{url}/{run['id']}", json={"output": output}, headers=auth()) as resp:
        assert (await resp.json())["output"]["annotations_count"] == 100
    too_long = {"title": "t", "summary": "s" * 65536}
    async with http.patch(f"{url}/{run['id']}", json={"output": too_long}, headers=auth()) as resp:
        assert resp.status == 422


async def test_secondary_rate_limit_on_content_creation() -> None:
    """DOCS data/reusables/rest-api/secondary-rate-limit-rest-graphql.md: "no more than 80
    content-generating requests per minute and no more than 500 ... per hour"; rate-limits-for-the-
    rest-api.md, "Exceeding the rate limit": 403/429 with a secondary-limit message, ``retry-after``
    (limit lowered to 2 a minute here)."""
    async with (
        FakeGitHub(token=TOKEN, content_creation_limits=[(60, 2)]) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
    ):
        gh.add_pull_from_payload(load("pull_request.opened.2.json"), BASE_FILES, HEAD_FILES)
        answers = []
        for _ in range(3):
            async with http.post(
                f"{PR}/reviews", json={"event": "COMMENT", "body": "b"}, headers=auth()
            ) as resp:
                answers.append((resp.status, resp.headers.get("Retry-After"), await resp.json()))
        assert [status for status, _, _ in answers] == [200, 200, 403]
        _, retry_after, body = answers[-1]
        assert retry_after is not None and 1 <= int(retry_after) <= 60
        assert "secondary rate limit" in body["message"]
        assert body["documentation_url"].endswith("#about-secondary-rate-limits")
        async with http.get(PR, headers=auth()) as resp:
            assert resp.status == 200, "reads are not content creation"
        assert len(gh.reviews) == 2


async def test_primary_rate_limit_headers_and_403() -> None:
    """DOCS rate-limits-for-the-rest-api.md, "Checking the status of your rate limit" (the
    ``x-ratelimit-limit/remaining/used/reset/resource`` headers) and "Exceeding the rate limit"
    (403 with ``x-ratelimit-remaining: 0``; do not retry before ``x-ratelimit-reset``)."""
    async with (
        FakeGitHub(token=TOKEN, rate_limit=2) as gh,
        aiohttp.ClientSession(base_url=gh.url) as http,
    ):
        gh.add_pull_from_payload(load("pull_request.opened.2.json"), BASE_FILES, HEAD_FILES)
        seen = []
        for _ in range(3):
            async with http.get(PR, headers=auth()) as resp:
                headers = resp.headers
                seen.append((resp.status, headers["X-RateLimit-Remaining"], headers["X-RateLimit-Used"]))
                body = await resp.json()
        assert seen == [(200, "1", "1"), (200, "0", "2"), (403, "0", "2")]
        assert int(headers["X-RateLimit-Reset"]) > time.time()
        assert headers["X-RateLimit-Resource"] == "core"
        assert body["message"].startswith("API rate limit exceeded")


async def test_requests_are_recorded_as_sent(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
    """The request log keeps the decoded ``path`` and the ``raw_path`` as it came over the wire."""
    gh.push(OWNER, REPO, 2, {**HEAD_FILES, "a b/c?#%.py": b"x\n"}, "9" * 40)
    async with http.get(f"{CONTENTS}/a%20b/c%3F%23%25.py", params={"ref": "9" * 40}, headers=auth()) as resp:
        assert resp.status == 200
    assert gh.requests[-1]["path"] == f"{CONTENTS}/a b/c?#%.py"
    assert gh.requests[-1]["raw_path"] == f"{CONTENTS}/a%20b/c%3F%23%25.py"

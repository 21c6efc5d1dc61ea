"""Tests of the fake GitHub REST API itself (tests/fakes/github.py), over real HTTP."""

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

from tests.fakes.github import FakeGitHub, compute_files, generate_app_key, git_blob_sha

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
    payload = load("pull_request.opened.2.json")["pull_request"]
    for scheme in ("token", "Bearer"):
        async with http.get(PR, headers=auth(scheme=scheme)) as resp:
            assert resp.status == 200
            pull = await resp.json()
    assert pull == payload
    assert gh.requests[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert int(resp.headers["X-RateLimit-Remaining"]) == gh.rate_limit - 2


async def test_jwt_exchange_then_installation_token() -> None:
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
    assert created["user"]["login"] == "patchwarden[bot]"
    assert gh.reviews[0]["id"] == created["id"] and gh.reviews[0]["event"] == "COMMENT"

    comments = gh.review_comments
    assert [(c["path"], c["line"], c["side"], c["start_line"]) for c in comments] == [
        ("app.py", 7, "RIGHT", None),
        ("app.py", 7, "RIGHT", 5),
        ("gone.txt", 1, "LEFT", None),
        ("app.py", 2, "RIGHT", None),
    ]
    assert all(c["user"]["login"] == "patchwarden[bot]" and c["in_reply_to_id"] is None for c in comments)
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
    human = gh.add_review_comment(OWNER, REPO, 2, path="app.py", line=7, body="why?", user_login="octocat")
    async with http.post(
        f"{PR}/comments/{human['id']}/replies", json={"body": "Because."}, headers=auth()
    ) as resp:
        assert resp.status == 201
        reply = await resp.json()
    assert reply["in_reply_to_id"] == human["id"]
    assert gh.replies[0]["body"] == "Because." and gh.replies[0]["user"]["login"] == "patchwarden[bot]"
    assert gh.review_comments[-1]["id"] == reply["id"]
    async with http.post(f"{PR}/comments/{reply['id']}/replies", json={"body": "x"}, headers=auth()) as resp:
        assert resp.status == 422  # replies to replies are not supported
    async with http.post(f"{PR}/comments/123/replies", json={"body": "x"}, headers=auth()) as resp:
        assert resp.status == 404
    with pytest.raises(ValueError, match="not part of the diff"):
        gh.add_review_comment(OWNER, REPO, 2, path="app.py", line=99, body="x")


# ---- contents --------------------------------------------------------------------------------


async def test_contents_base64_and_raw(gh: FakeGitHub, http: aiohttp.ClientSession) -> None:
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
        ("eyes", comment["id"], "patchwarden[bot]")
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

"""Tests of the fake Gerrit itself, over real HTTP and real SSH."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import pytest

from tests.fakes.gerrit import (
    XSSI_PREFIX,
    FakeChange,
    FakeGerrit,
    ReviewRejected,
    generate_ssh_keypair,
    gerrit_timestamp,
    load_fixture,
)

PROJECT = "platform/tools"  # contains a slash on purpose: must travel as %2F
PROJECT_ENC = "platform%2Ftools"
JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8"}

BASE_PY = b"".join(f"line {i}\n".encode() for i in range(1, 31))
NEW_PY = BASE_PY.replace(b"line 15\n", b"line 15 changed\nextra = eval(x)\n")


@pytest.fixture
async def gerrit() -> AsyncIterator[FakeGerrit]:
    async with FakeGerrit(user="patchwarden", http_password="secret") as g:
        yield g


@pytest.fixture
async def http(gerrit: FakeGerrit) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gerrit.url, headers=basic("patchwarden", "secret")) as session:
        yield session


@pytest.fixture
def ssh_key(tmp_path: Path, gerrit: FakeGerrit) -> Path:
    private_path, public = generate_ssh_keypair(tmp_path / "ssh")
    gerrit.authorize_ssh_key(public)
    return private_path


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def strip_xssi(text: str) -> Any:
    assert text.startswith(XSSI_PREFIX), text[:20]
    return json.loads(text[len(XSSI_PREFIX) :])


async def get_json(http: aiohttp.ClientSession, path: str, **kw: Any) -> Any:
    async with http.get(path, **kw) as resp:
        text = await resp.text()
        assert resp.status == 200, (resp.status, text)
        assert resp.content_type == "application/json"
        return strip_xssi(text)


async def post_review(
    http: aiohttp.ClientSession, change: FakeChange, revision: str, body: dict[str, Any]
) -> tuple[int, str]:
    url = f"/a/changes/{PROJECT_ENC}~{change.number}/revisions/{revision}/review"
    async with http.post(url, data=json.dumps(body), headers=JSON_HEADERS) as resp:
        return resp.status, await resp.text()


def make_change(g: FakeGerrit, **kw: Any) -> FakeChange:
    human = g.add_account("Jane Roe", "jroe", "jane.roe@example.com")
    return g.create_change(
        PROJECT,
        "master",
        human,
        "Add feature",
        base_files={"src/app.py": BASE_PY, "README.md": b"hello\n", "old.txt": b"bye\n"},
        files={"src/app.py": NEW_PY, "src/new.py": b"import os\n", "old.txt": None},
        **kw,
    )


async def ssh_connect(g: FakeGerrit, key: Path, **kw: Any) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        port=g.ssh_port,
        username="patchwarden",
        client_keys=[str(key)],
        known_hosts=asyncssh.import_known_hosts(g.known_hosts_line()),
        **kw,
    )


async def read_event(proc: asyncssh.SSHClientProcess[str], timeout: float = 5) -> dict[str, Any]:
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    assert line.endswith("\n"), repr(line)
    event: dict[str, Any] = json.loads(line)
    return event


# ----------------------------------------------------------------------------- REST: auth & framing


async def test_unauthenticated_and_wrong_password_get_401(gerrit: FakeGerrit) -> None:
    """rest-api.txt "Authentication": ``/a/`` endpoints need HTTP Basic with the account's HTTP password; anything else is 401 with a ``WWW-Authenticate`` challenge."""
    async with aiohttp.ClientSession(base_url=gerrit.url) as anon:
        async with anon.get("/a/accounts/self") as resp:
            assert resp.status == 401
            assert resp.content_type == "text/plain"
            body = await resp.text()
            assert body.strip() == "Unauthorized"
            assert not body.startswith(")]}'")
            assert "Basic" in resp.headers["WWW-Authenticate"]
        async with anon.get("/a/accounts/self", headers=basic("patchwarden", "wrong")) as resp:
            assert resp.status == 401
        async with anon.get("/a/accounts/self", headers=basic("nobody", "secret")) as resp:
            assert resp.status == 401
        # Without the /a/ prefix everything is 401 in the fake, credentials or not ...
        async with anon.get("/accounts/self", headers=basic("patchwarden", "secret")) as resp:
            assert resp.status == 401
        # ... except the server version.
        async with anon.get("/config/server/version") as resp:
            assert resp.status == 200
            assert isinstance(strip_xssi(await resp.text()), str)
    assert [r.user for r in gerrit.requests[:3]] == [None, None, None]


async def test_accounts_self_has_xssi_prefix_and_service_user_tag(
    gerrit: FakeGerrit, http: aiohttp.ClientSession
) -> None:
    """rest-api.txt "Output Format" (the ``)]}'`` line before every JSON body) and rest-api-accounts.txt "Get Account" with ``self``; AccountInfo ``tags`` carries ``SERVICE_USER``."""
    async with http.get("/a/accounts/self") as resp:
        text = await resp.text()
    assert text.startswith(")]}'\n")
    assert "\n  " in text  # pretty by default
    info = strip_xssi(text)
    shape = load_fixture("rest/account.get.self.response.json")
    assert set(shape) <= set(info)
    assert info["_account_id"] == gerrit.bot.account_id
    assert info["username"] == "patchwarden"
    assert info["tags"] == ["SERVICE_USER"]

    async with http.get("/a/accounts/self", headers={"Accept": "application/json"}) as resp:
        compact = await resp.text()
    assert compact.startswith(")]}'\n{") and "\n  " not in compact
    assert ("GET", "/a/accounts/self", "patchwarden") in gerrit.requests


async def test_post_requires_json_content_type(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api.txt "Input Format": request bodies are ``application/json`` (UTF-8); anything else is 400."""
    change = make_change(gerrit)
    url = f"/a/changes/{PROJECT_ENC}~{change.number}/revisions/current/review"
    async with http.post(
        url, data=json.dumps({"message": "hi"}), headers={"Content-Type": "text/plain"}
    ) as resp:
        assert resp.status == 400
        assert "application/json" in await resp.text()
    async with http.post(url, data="{not json", headers=JSON_HEADERS) as resp:
        assert resp.status == 400
    assert gerrit.reviews == []


# ----------------------------------------------------------------------------- REST: changes, files, diff


async def test_query_and_get_change(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "Query Changes" and "Get Change": ChangeInfo fields, ``o=`` options (unknown ones are 400), project~number identifiers."""
    change = make_change(gerrit, wip=True)
    other = gerrit.create_change(
        "other", "master", change.owner_id, "Elsewhere", base_files={}, files={"a": b"a\n"}
    )
    gerrit.set_change_status(other, "MERGED")

    result = await get_json(
        http,
        "/a/changes/",
        params=[("q", f"status:open project:{PROJECT}"), ("o", "CURRENT_REVISION"), ("o", "CURRENT_COMMIT"),
                ("o", "DETAILED_ACCOUNTS"), ("o", "MESSAGES")],
    )  # fmt: skip
    assert [c["_number"] for c in result] == [3965]
    info = result[0]
    assert info["project"] == PROJECT
    assert info["branch"] == "master"
    assert info["change_id"] == change.change_id
    assert info["work_in_progress"] is True
    assert "is_private" not in info  # Gerrit omits false booleans
    assert info["owner"]["username"] == "jroe"
    rev = info["revisions"][info["current_revision"]]
    assert rev["_number"] == 1
    assert rev["ref"] == "refs/changes/65/3965/1"
    assert rev["kind"] == "REWORK"
    assert rev["uploader"]["_account_id"] == change.owner_id
    assert rev["commit"]["subject"] == "Add feature"
    assert info["messages"][0]["message"] == "Uploaded patch set 1."
    assert info["created"] == gerrit_timestamp(change.created)

    # bare number, project~number and /detail all resolve; unknown is 404 text/plain.
    assert (await get_json(http, f"/a/changes/{change.number}"))["_number"] == 3965
    detail = await get_json(http, f"/a/changes/{PROJECT_ENC}~{change.number}/detail")
    assert "revisions" not in detail and detail["labels"]["Code-Review"]["values"]["+2"]
    async with http.get(f"/a/changes/{PROJECT_ENC}~9999") as resp:
        assert resp.status == 404
        assert not (await resp.text()).startswith(")]}'")
    async with http.get("/a/changes/", params={"q": "status:open", "o": "BOGUS"}) as resp:
        assert resp.status == 400


async def test_query_after_and_limit(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """user-search.txt "after:'TIME'" and rest-api-changes.txt "Query Changes" (``n``, ``_more_changes`` on the last change only)."""
    owner = gerrit.add_account("A", "a", "a@example.com")
    for i in range(3):
        gerrit.create_change(PROJECT, "master", owner, f"c{i}", base_files={}, files={f"f{i}": b"x\n"})
        gerrit.advance_clock(60)
    cutoff = gerrit.now() - timedelta(seconds=90)
    after = cutoff.strftime("%Y-%m-%d %H:%M:%S")
    result = await get_json(http, "/a/changes/", params={"q": f'status:open after:"{after}"'})
    assert [c["_number"] for c in result] == [3967]
    page = await get_json(http, "/a/changes/", params={"q": "status:open", "n": "2"})
    assert [c["_number"] for c in page] == [3967, 3966]
    assert page[-1]["_more_changes"] is True
    assert "_more_changes" not in page[0]
    one = await get_json(http, "/a/changes/", params={"q": "change:3965"})
    assert [c["_number"] for c in one] == [3965]


async def test_files_diff_and_content(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "List Files" (FileInfo ``status`` letters, ``size_delta``, magic ``/COMMIT_MSG``, ``parent``), "Get Diff" (DiffInfo ``meta_a``/``meta_b``, ``content`` chunks ``ab``/``a``/``b``/``skip``, ``context``) and "Get Content" (base64, ``parent``, 404)."""
    change = make_change(gerrit)
    gerrit.set_branch_file(PROJECT, "master", ".patchwarden.yaml", b"severity: high\n")
    base = f"/a/changes/{PROJECT_ENC}~{change.number}/revisions/current"

    files = await get_json(http, f"{base}/files/")
    assert list(files) == ["/COMMIT_MSG", "old.txt", "src/app.py", "src/new.py"]
    assert files["/COMMIT_MSG"]["status"] == "A"
    assert files["src/app.py"] == {"lines_inserted": 2, "lines_deleted": 1, "size_delta": len(NEW_PY) - len(BASE_PY),
                                   "size": len(NEW_PY)}  # fmt: skip
    assert files["src/new.py"]["status"] == "A"
    assert files["old.txt"]["status"] == "D"
    assert (await get_json(http, f"{base}/files/", params={"parent": "1"})) == files

    # revision by abbreviated sha and by patch-set number give the same
    sha = change.current.revision
    assert (await get_json(http, f"/a/changes/{change.number}/revisions/{sha[:7]}/files/")) == files
    assert (await get_json(http, f"/a/changes/{change.number}/revisions/1/files/")) == files

    diff = await get_json(http, f"{base}/files/src%2Fapp.py/diff")
    assert diff["change_type"] == "MODIFIED"
    assert diff["meta_a"]["lines"] == 30 and diff["meta_b"]["lines"] == 31
    kinds = [sorted(k for k in chunk if k != "common") for chunk in diff["content"]]
    assert kinds == [["skip"], ["ab"], ["a", "b"], ["ab"], ["skip"]]  # default context 10
    assert diff["content"][2] == {"a": ["line 15"], "b": ["line 15 changed", "extra = eval(x)"]}
    full = await get_json(http, f"{base}/files/src%2Fapp.py/diff", params={"context": "ALL"})
    assert [sorted(chunk) for chunk in full["content"]] == [["ab"], ["a", "b"], ["ab"]]
    assert len(full["content"][0]["ab"]) == 14
    added = await get_json(http, f"{base}/files/src%2Fnew.py/diff")
    assert added["change_type"] == "ADDED" and "meta_a" not in added
    assert added["content"] == [{"b": ["import os"]}]
    shape = load_fixture("rest/revision.file.diff.response.json")
    assert set(diff) == set(shape)

    async with http.get(f"{base}/files/src%2Fapp.py/content") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; charset=ISO-8859-1"
        assert resp.headers["X-FYI-Content-Encoding"] == "base64"
        assert "X-FYI-Content-Type" in resp.headers
        body = await resp.read()
    assert base64.b64decode(body) == NEW_PY
    async with http.get(f"{base}/files/src%2Fapp.py/content", params={"parent": "1"}) as resp:
        assert base64.b64decode(await resp.read()) == BASE_PY
    async with http.get(f"{base}/files/%2FCOMMIT_MSG/content") as resp:
        assert base64.b64decode(await resp.read()).decode().startswith("Add feature\n\nChange-Id: I")
    async with http.get(f"{base}/files/nope.py/content") as resp:
        assert resp.status == 404

    async with http.get(f"/a/projects/{PROJECT_ENC}/branches/master/files/.patchwarden.yaml/content") as resp:
        assert resp.status == 200
        assert base64.b64decode(await resp.read()) == b"severity: high\n"
    async with http.get(f"/a/projects/{PROJECT_ENC}/branches/master/files/missing.yaml/content") as resp:
        assert resp.status == 404


# ----------------------------------------------------------------------------- REST: reviews


async def test_review_on_path_not_in_revision_is_400(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "Set Review": a comment on a file that is not in the revision is 400 with a text/plain reason."""
    change = make_change(gerrit)
    status, text = await post_review(
        http, change, "current", {"message": "x", "comments": {"README.md": [{"line": 1, "message": "m"}]}}
    )
    assert status == 400
    assert text.strip() == "file README.md not found in revision 3965,1"
    assert not text.startswith(")]}'")
    assert gerrit.reviews == []


async def test_review_past_end_of_file_and_bad_range_are_400(
    gerrit: FakeGerrit, http: aiohttp.ClientSession
) -> None:
    """rest-api-changes.txt "CommentInput" / "CommentRange": ``line`` is 1-based, a range has 1-based lines and 0-based characters and must not end before it starts (400). Past-the-end lines are refused too (the fake is stricter than Gerrit here, see _validate_comment)."""
    change = make_change(gerrit)
    cases = [
        {"src/app.py": [{"line": 32, "message": "past end"}]},
        {"src/app.py": [{"line": -1, "message": "negative"}]},
        {"src/app.py": [{"range": {"start_line": 5, "start_character": 0, "end_line": 4, "end_character": 1},
                         "message": "reversed"}]},
        {"src/app.py": [{"range": {"start_line": 30, "start_character": 0, "end_line": 40, "end_character": 0},
                         "message": "range past end"}]},
        {"src/app.py": [{"line": 3, "in_reply_to": "deadbeef_00000000", "message": "reply"}]},
        {"/PATCHSET_LEVEL": [{"line": 3, "message": "ps level with line"}]},
        {"old.txt": [{"line": 1, "message": "deleted file, revision side has no lines"}]},
    ]  # fmt: skip
    for comments in cases:
        status, text = await post_review(http, change, "current", {"comments": comments})
        assert status == 400, (comments, text)
    # the deleted file can be commented on the parent side
    status, text = await post_review(
        http, change, "current", {"comments": {"old.txt": [{"line": 1, "side": "PARENT", "message": "ok"}]}}
    )
    assert status == 200, text
    assert len(gerrit.reviews) == 1


async def test_labels_are_validated(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "Set Review" ReviewInput ``labels``: a vote outside the permitted range is refused (the fake behaves as with ``change.strictLabels``)."""
    change = make_change(gerrit)
    assert (await post_review(http, change, "current", {"labels": {"Code-Review": -1}}))[0] == 403
    gerrit.grant_label("Code-Review", -1, 1)
    assert (await post_review(http, change, "current", {"labels": {"Code-Review": 3}}))[0] == 400
    assert (await post_review(http, change, "current", {"labels": {"Bogus": 1}}))[0] == 400
    assert (await post_review(http, change, "current", {"labels": {"Code-Review": -2}}))[0] == 403
    status, text = await post_review(http, change, "current", {"labels": {"Code-Review": -1}})
    assert status == 200
    assert strip_xssi(text) == {"labels": {"Code-Review": -1}}
    assert change.votes[gerrit.bot.account_id] == {"Code-Review": -1}


async def test_valid_review_is_recorded_and_listed(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "Set Review" (``tag``, ``notify``, ``in_reply_to``, ``unresolved``) and "List Change Comments" (CommentInfo ``patch_set``, ``change_message_id``, ``tag``, ``author``)."""
    change = make_change(gerrit)
    ps1 = change.current
    gerrit.upload_patchset(change, {"src/app.py": NEW_PY + b"more\n"})
    review = {
        "message": "Patchwarden found 1 issue.",
        "tag": "autogenerated:patchwarden",
        "notify": "OWNER",
        "comments": {
            "src/app.py": [
                {"line": 16, "message": "eval() on input", "unresolved": True},
                {"range": {"start_line": 15, "start_character": 0, "end_line": 16, "end_character": 4},
                 "message": "range comment"},
                {"line": 17, "message": "   "},  # dropped silently, like Gerrit
            ],
            "/PATCHSET_LEVEL": [{"message": "summary"}],
        },
    }  # fmt: skip
    # a review on a non-current patch set is allowed
    status, text = await post_review(http, change, ps1.revision, review)
    assert status == 200, text
    assert strip_xssi(text) == {}
    assert gerrit.reviews == [(change.number, ps1.revision, review)]

    comments = await get_json(http, f"/a/changes/{PROJECT_ENC}~{change.number}/comments")
    assert list(comments) == ["/PATCHSET_LEVEL", "src/app.py"]
    first, second = comments["src/app.py"]
    assert first["patch_set"] == 1 and first["line"] == 16 and first["unresolved"] is True
    assert first["author"]["_account_id"] == gerrit.bot.account_id
    assert first["tag"] == "autogenerated:patchwarden"
    assert first["commit_id"] == ps1.revision
    assert second["line"] == 16 and second["range"]["start_line"] == 15 and second["unresolved"] is False
    assert set(load_fixture("rest/change.comments.list.response.json")["gerrit-server/src/main/java/com/google/"
               "gerrit/server/project/RefControl.java"][0]) <= set(first)  # fmt: skip

    # reply to it (in_reply_to now valid), dedupe with omit_duplicate_comments
    reply = {"comments": {"src/app.py": [{"line": 16, "in_reply_to": first["id"], "message": "still there"}]}}
    assert (await post_review(http, change, "current", reply))[0] == 200
    dup = {
        "omit_duplicate_comments": True,
        "comments": {"src/app.py": [{"line": 16, "message": "eval() on input"}]},
    }
    assert (await post_review(http, change, ps1.revision, dup))[0] == 200
    comments = await get_json(http, f"/a/changes/{PROJECT_ENC}~{change.number}/comments")
    assert len(comments["src/app.py"]) == 3
    assert comments["src/app.py"][2]["in_reply_to"] == first["id"]
    assert comments["src/app.py"][2]["unresolved"] is True  # inherited from the parent comment

    detail = await get_json(http, f"/a/changes/{change.number}/detail")
    bot_msgs = [m for m in detail["messages"] if m["author"]["_account_id"] == gerrit.bot.account_id]
    assert bot_msgs[0]["message"] == "Patch Set 1:\n\n(3 comments)\n\nPatchwarden found 1 issue."
    assert bot_msgs[0]["tag"] == "autogenerated:patchwarden"


async def test_add_comment_helper_validates(gerrit: FakeGerrit) -> None:
    change = make_change(gerrit)
    msg = gerrit.add_comment(change, change.owner_id, "please recheck", labels={"Code-Review": 1})
    assert msg is not None and msg.message == "Patch Set 1: Code-Review+1\n\nplease recheck"
    with pytest.raises(ReviewRejected) as exc:
        gerrit.add_comment(change, change.owner_id, "x", comments={"nope": [{"line": 1, "message": "m"}]})
    assert exc.value.status == 400


async def test_fail_next_injects_errors_and_delays(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    gerrit.fail_next("GET", r"^/a/accounts/self$", 503, count=2, body="try later")
    for _ in range(2):
        async with http.get("/a/accounts/self") as resp:
            assert resp.status == 503
            assert (await resp.text()).strip() == "try later"
    async with http.get("/a/accounts/self") as resp:
        assert resp.status == 200
    gerrit.fail_next("*", r"/accounts/", None, delay=0.5)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get("/a/accounts/self", timeout=aiohttp.ClientTimeout(total=0.1)):
            pass


# ----------------------------------------------------------------------------- SSH stream-events


async def test_stream_delivers_patchset_created_then_comment_added(
    gerrit: FakeGerrit, http: aiohttp.ClientSession, ssh_key: Path
) -> None:
    """cmd-stream-events.txt "patchset-created" and "comment-added" (and json.txt for the change, patchSet and account attributes: ``patchSet.kind``, ``approvals``, ``author``, ``eventCreatedOn``)."""
    async with await ssh_connect(gerrit, ssh_key) as conn:
        proc = await conn.create_process("gerrit stream-events")
        await gerrit.wait_for_stream()
        change = make_change(gerrit)

        created = await read_event(proc)
        assert created["type"] == "patchset-created"
        shape = load_fixture("stream-events/patchset-created.json")
        assert list(created) == list(shape)
        assert list(created["patchSet"]) == list(shape["patchSet"])
        assert [k for k in shape["change"] if k != "topic"] == list(created["change"])
        assert created["change"]["number"] == change.number
        assert created["change"]["project"] == PROJECT
        assert created["patchSet"]["revision"] == change.current.revision
        assert created["patchSet"]["ref"] == "refs/changes/65/3965/1"
        assert created["patchSet"]["sizeDeletions"] <= 0
        assert created["uploader"]["username"] == "jroe"

        gerrit.grant_label("Code-Review", -1, 1)
        status, _ = await post_review(
            http, change, "current", {"message": "found <things> & =", "labels": {"Code-Review": -1},
                                      "tag": "autogenerated:patchwarden"}
        )  # fmt: skip
        assert status == 200
        added = await read_event(proc)
        assert added["type"] == "comment-added"
        assert list(added) == list(load_fixture("stream-events/comment-added.json"))
        assert added["author"]["username"] == "patchwarden"
        assert added["comment"] == "Patch Set 1: Code-Review-1\n\nfound <things> & ="
        assert added["approvals"] == [
            {"type": "Code-Review", "description": "Code-Review", "value": "-1", "oldValue": "0"}
        ]
        proc.close()


async def test_stream_wire_format_is_gson_compact(gerrit: FakeGerrit, ssh_key: Path) -> None:
    """cmd-stream-events.txt "Description": one compact JSON object per line."""
    async with await ssh_connect(gerrit, ssh_key) as conn:
        proc = await conn.create_process("gerrit stream-events")
        await gerrit.wait_for_stream()
        gerrit.emit({"type": "custom", "text": "a=b <c>", "eventCreatedOn": 1})
        line = await asyncio.wait_for(proc.stdout.readline(), 5)
        assert line == '{"type":"custom","text":"a\\u003db \\u003cc\\u003e","eventCreatedOn":1}\n'


async def test_stream_subscribe_filter(gerrit: FakeGerrit, ssh_key: Path) -> None:
    """cmd-stream-events.txt "Options": ``--subscribe|-s`` limits the stream to the named event types."""
    async with await ssh_connect(gerrit, ssh_key) as conn:
        proc = await conn.create_process("gerrit stream-events -s comment-added --subscribe change-merged")
        await gerrit.wait_for_stream()
        change = make_change(gerrit)  # patchset-created: filtered out
        gerrit.emit({"type": "ref-updated", "eventCreatedOn": 1})
        gerrit.add_comment(change, change.owner_id, "hello")
        gerrit.set_change_status(change, "MERGED")
        first = await read_event(proc)
        second = await read_event(proc)
        assert [first["type"], second["type"]] == ["comment-added", "change-merged"]
        assert first["comment"] == "Patch Set 1:\n\nhello"


async def test_private_change_events_are_not_streamed(gerrit: FakeGerrit, ssh_key: Path) -> None:
    """cmd-stream-events.txt "Description": only events the user can see are sent (private changes of others are not)."""
    async with await ssh_connect(gerrit, ssh_key) as conn:
        proc = await conn.create_process("gerrit stream-events")
        await gerrit.wait_for_stream()
        make_change(gerrit, private=True)
        gerrit.emit({"type": "marker", "eventCreatedOn": 1})
        assert (await read_event(proc))["type"] == "marker"


async def test_drop_streams_closes_the_channel(gerrit: FakeGerrit, ssh_key: Path) -> None:
    conn = await ssh_connect(gerrit, ssh_key, keepalive_interval=0.2)
    try:
        proc = await conn.create_process("gerrit stream-events")
        await gerrit.wait_for_stream()
        await asyncio.sleep(0.5)  # keepalives get answered, connection stays up
        assert gerrit.stream_count == 1
        assert gerrit.drop_streams() == 1
        assert gerrit.stream_count == 0
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 5)
        except asyncssh.ConnectionLost:
            line = ""
        assert line == ""  # EOF / connection lost, the bot must reconnect
        await asyncio.wait_for(conn.wait_closed(), 5)
    finally:
        conn.close()
    # reconnect works
    async with await ssh_connect(gerrit, ssh_key) as conn2:
        proc2 = await conn2.create_process("gerrit stream-events")
        await gerrit.wait_for_stream()
        gerrit.emit({"type": "again", "eventCreatedOn": 2})
        assert (await read_event(proc2))["type"] == "again"


async def test_ssh_rejects_wrong_key_and_password(gerrit: FakeGerrit, ssh_key: Path, tmp_path: Path) -> None:
    """cmd-stream-events.txt "Access" / user-upload.txt "SSH": public-key authentication only."""
    other_key, _ = generate_ssh_keypair(tmp_path / "other")
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(gerrit, other_key)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            port=gerrit.ssh_port,
            username="patchwarden",
            password="secret",
            client_keys=None,
            known_hosts=asyncssh.import_known_hosts(gerrit.known_hosts_line()),
        )
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            port=gerrit.ssh_port,
            username="jroe",
            client_keys=[str(ssh_key)],
            known_hosts=asyncssh.import_known_hosts(gerrit.known_hosts_line()),
        )
    # a server with another host key fails host key verification
    async with FakeGerrit() as impostor:
        impostor.authorize_ssh_key(Path(str(ssh_key) + ".pub").read_text())
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            await asyncssh.connect(
                "127.0.0.1",
                port=impostor.ssh_port,
                username="patchwarden",
                client_keys=[str(ssh_key)],
                known_hosts=asyncssh.import_known_hosts(
                    gerrit.known_hosts_line().replace(str(gerrit.ssh_port), str(impostor.ssh_port))
                ),
            )


async def test_other_commands_fail_like_gerrit(gerrit: FakeGerrit, ssh_key: Path) -> None:
    """cmd-index.txt: commands the fake does not serve fail with exit status 1, as an unknown or forbidden command does."""
    async with await ssh_connect(gerrit, ssh_key) as conn:
        result = await conn.run("gerrit query status:open", check=False)
        assert result.exit_status == 1
        assert str(result.stderr).startswith("fatal: ")
        result = await conn.run("ls", check=False)
        assert result.exit_status == 1
        assert "fatal: ls: not found" in str(result.stderr)
        result = await conn.run("gerrit stream-events --bogus", check=False)
        assert result.exit_status == 1
        assert gerrit.stream_count == 0


async def test_diff_whitespace_modes_and_rename(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """rest-api-changes.txt "Get Diff" ``whitespace`` values and DiffInfo ``change_type`` RENAMED, with FileInfo ``old_path``."""
    owner = gerrit.add_account("A", "a", "a@example.com")
    change = gerrit.create_change(
        PROJECT,
        "master",
        owner,
        "Reindent and move",
        base_files={"a.py": b"if x:\n    y()\n", "old_name.py": b"v = 1\n"},
        files={"a.py": b"if x:\n        y()\n"},
        renames={"new_name.py": "old_name.py"},
    )
    base = f"/a/changes/{change.number}/revisions/current/files"
    # Gerrit's default ignores leading/trailing whitespace: no edit left, the whole file is skipped
    assert (await get_json(http, f"{base}/a.py/diff"))["content"] == [{"skip": 2}]
    default = await get_json(http, f"{base}/a.py/diff", params={"context": "ALL"})
    assert default["content"] == [{"ab": ["if x:"]}, {"a": ["    y()"], "b": ["        y()"], "common": True}]
    strict = await get_json(http, f"{base}/a.py/diff", params={"whitespace": "IGNORE_NONE"})
    assert strict["content"] == [{"ab": ["if x:"]}, {"a": ["    y()"], "b": ["        y()"]}]
    files = await get_json(http, f"{base}/")
    assert files["new_name.py"]["status"] == "R"
    assert files["new_name.py"]["old_path"] == "old_name.py"
    assert "old_name.py" not in files
    renamed = await get_json(http, f"{base}/new_name.py/diff")
    assert renamed["change_type"] == "RENAMED"
    assert renamed["meta_a"]["name"] == "old_name.py"


# ----------------------------------------------------------------------------- documented wire rules


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        (None, "base64"),
        ("text/plain", "base64"),
        ("*/*", "base64"),
        ("application/json, text/plain", "base64"),  # not the *only* value
        ("application/json", "json"),
        ("application/json; charset=UTF-8", "json"),
    ],
)
async def test_get_content_negotiates_base64_or_json(
    gerrit: FakeGerrit, accept: str | None, encoding: str
) -> None:
    """rest-api-changes.txt "Get Content" (revision files and /COMMIT_MSG) and rest-api-projects.txt
    "Get Content" (branch files): base64 text/plain, "Alternatively, if the only value of the Accept
    request header is application/json the content is returned as JSON string and
    X-FYI-Content-Encoding is set to json"."""
    change = make_change(gerrit)
    gerrit.set_branch_file(PROJECT, "master", ".patchwarden.yaml", b"enabled: true\n")
    base = f"/a/changes/{PROJECT_ENC}~{change.number}/revisions/current/files"
    urls = {
        f"{base}/src%2Fapp.py/content": NEW_PY,
        f"{base}/src%2Fapp.py/content?parent=1": BASE_PY,
        f"/a/projects/{PROJECT_ENC}/branches/master/files/.patchwarden.yaml/content": b"enabled: true\n",
    }
    headers = {**basic("patchwarden", "secret"), **({"Accept": accept} if accept else {})}
    async with aiohttp.ClientSession(
        base_url=gerrit.url, headers=headers, skip_auto_headers=["Accept"]
    ) as http:
        for url, expected in urls.items():
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["X-FYI-Content-Encoding"] == encoding
                body = await resp.read()
            if encoding == "json":
                assert resp.content_type == "application/json"
                assert strip_xssi(body.decode()) == expected.decode()
            else:
                assert resp.content_type == "text/plain" and not body.startswith(b")]}'")
                assert base64.b64decode(body, validate=True) == expected
        async with http.get(f"{base}/%2FCOMMIT_MSG/content") as resp:
            assert resp.headers["X-FYI-Content-Encoding"] == encoding


async def test_errors_are_plain_text_without_the_xssi_prefix(
    gerrit: FakeGerrit, http: aiohttp.ClientSession
) -> None:
    """rest-api.txt "Response Codes": errors carry a text/plain message and no JSON framing,
    whatever the client accepts."""
    change = make_change(gerrit)
    for url, status in (
        (f"/a/changes/{PROJECT_ENC}~{change.number}/revisions/current/files/nope.py/content", 404),
        ("/a/changes/99999", 404),
        ("/a/changes/?q=status:open&n=x", 400),
    ):
        async with http.get(url, headers={"Accept": "application/json"}) as resp:
            body = await resp.text()
            assert resp.status == status, (url, body)
            assert resp.content_type == "text/plain" and not body.startswith(")]}'")


async def test_query_limit_caps_n_and_marks_more_changes(
    gerrit: FakeGerrit, http: aiohttp.ClientSession
) -> None:
    """rest-api-changes.txt "Query Changes": "If the number of changes matching the query exceeds
    either the internal limit or a supplied n query parameter, the last change object has a
    _more_changes: true JSON field set"; S / start skip changes."""
    owner = gerrit.add_account("A", "a", "a@example.com")
    for i in range(5):
        gerrit.create_change(PROJECT, "master", owner, f"c{i}", base_files={}, files={f"f{i}": b"x\n"})
        gerrit.advance_clock(1)
    gerrit.query_limit = 2
    numbers: list[int] = []
    start = 0
    while True:
        page = await get_json(http, "/a/changes/", params={"q": "status:open", "n": "100", "S": str(start)})
        assert len(page) <= 2
        numbers += [c["_number"] for c in page]
        start += len(page)
        if not page or not page[-1].get("_more_changes"):
            break
        assert all("_more_changes" not in c for c in page[:-1])
    assert numbers == [3969, 3968, 3967, 3966, 3965]
    tail = await get_json(http, "/a/changes/", params={"q": "status:open", "start": "4"})
    assert [c["_number"] for c in tail] == [3965] and "_more_changes" not in tail[0]


async def test_age_operator(gerrit: FakeGerrit, http: aiohttp.ClientSession) -> None:
    """user-search.txt "age:'AGE'": ``-age:1h`` is changes updated within the last hour, ``age:1h``
    those older; a unit is required."""
    owner = gerrit.add_account("A", "a", "a@example.com")
    old = gerrit.create_change(PROJECT, "master", owner, "old", base_files={}, files={"a": b"x\n"})
    gerrit.advance_clock(2 * 3600)
    new = gerrit.create_change(PROJECT, "master", owner, "new", base_files={}, files={"b": b"x\n"})
    recent = await get_json(http, "/a/changes/", params={"q": "status:open -age:1h"})
    assert [c["_number"] for c in recent] == [new.number]
    older = await get_json(http, "/a/changes/", params={"q": "status:open age:1hour"})
    assert [c["_number"] for c in older] == [old.number]
    async with http.get("/a/changes/", params={"q": "age:5"}) as resp:
        assert resp.status == 400

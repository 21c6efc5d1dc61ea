"""Gerrit end to end with fixes: the real service puts a fix on its comment as `fix_suggestions`
(Gerrit 3.10+), which the fake applies as "Apply Provided Fix" does; a server that refuses them,
or one older than 3.10 (which would silently drop them), gets the fix as a suggestion in the text."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fakes.gerrit import FakeGerrit, apply_fix_replacements, generate_ssh_keypair
from tests.fakes.github import SUGGESTION_BLOCK
from tests.service import running_service, wait_idle, wait_until
from tests.test_gerrit_e2e import HEAD, PASSWORD, PROJECT, USER, gerrit_settings, reviews_of

WITHOUT_IMPORT = HEAD.replace(b"import shutil\n", b"", 1)  # exactly the unused import's line


@pytest.fixture(
    params=[("3.10.1", False), ("3.10.1", True), ("3.9.5", False)], ids=["3.10", "refuses", "3.9"]
)
async def server(request, tmp_path):
    version, refuse = request.param
    async with FakeGerrit(
        user=USER, http_password=PASSWORD, version=version, refuse_fix_suggestions=refuse
    ) as g:
        key_path, public = generate_ssh_keypair(tmp_path / "ssh")
        g.authorize_ssh_key(public)
        (tmp_path / "ssh" / "known_hosts").write_text(g.known_hosts_line() + "\n")
        g.key_path, g.known_hosts = key_path, tmp_path / "ssh" / "known_hosts"  # type: ignore[attr-defined]
        g.owner = g.add_account("Jane Dev", "jdev", "jane@example.com")  # type: ignore[attr-defined]
        yield g, version == "3.10.1" and not refuse


async def test_fix_suggestions_on_the_comment_or_as_text(tmp_path, server):
    gerrit, structured = server
    async with running_service(gerrit_settings(tmp_path, gerrit)) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "Add run_hook", files={"nova/volume.py": HEAD}
        )
        await wait_until(lambda: reviews_of(gerrit, change.number), what="the review")
        await wait_idle(service)
    (review,) = reviews_of(gerrit, change.number)  # one review, whatever the server took
    posts = [r for r in gerrit.requests if r.method == "POST" and r.path.endswith("/review")]
    assert len(posts) == (2 if gerrit.refuse_fix_suggestions else 1), "refused once, then as text"
    comments = {c["line"]: c for c in review["comments"]["nova/volume.py"]}
    assert sorted(comments) == [3, 13]
    assert "fix_suggestions" not in comments[13], "utils.execute(cmd) has no mechanical fix"
    stored = {c.line: c for c in gerrit.changes[change.number].comments}
    if structured:
        (fix,) = comments[3]["fix_suggestions"]
        assert fix["description"] == "Remove unused import: `shutil`"
        assert fix["replacements"] == [
            {"path": "nova/volume.py", "range": {"start_line": 3, "start_character": 0, "end_line": 4,
             "end_character": 0}, "replacement": ""}
        ]  # fmt: skip
        (info,) = stored[3].fix_suggestions
        assert apply_fix_replacements(HEAD, info["replacements"]) == WITHOUT_IMPORT
        assert "```suggestion" not in comments[3]["message"]
    else:
        assert "fix_suggestions" not in comments[3] and not stored[3].fix_suggestions
        assert comments[3]["range"] == {
            "start_line": 3,
            "start_character": 0,
            "end_line": 3,
            "end_character": 13,
        }
        block = SUGGESTION_BLOCK.search(comments[3]["message"])
        assert block is not None and block["text"] == ""
        lines = HEAD.decode().splitlines(keepends=True)
        lines[2:3] = [block["text"]]  # the suggestion replaces the commented lines
        assert "".join(lines).encode() == WITHOUT_IMPORT
        assert comments[3]["message"].splitlines()[-1].startswith("patchwarden:")


def fix_input(*ranges: tuple[int, int, int, int], description: str | None = "d") -> dict:
    keys = ("start_line", "start_character", "end_line", "end_character")
    return {
        "description": description,
        "replacements": [{"path": "src/new.py", "range": dict(zip(keys, r, strict=True)), "replacement": ""}
                         for r in ranges],
    }  # fmt: skip


@pytest.mark.parametrize("version", ["3.10.1", "3.9.5"])
async def test_the_fake_validates_fix_suggestions_as_gerrit_does(version):
    """rest-api-changes.txt "FixSuggestionInfo", "FixReplacementInfo", "CommentRange" (Gerrit's
    CommentsValidator: a description, replacements with a path and a valid range, no overlap);
    rest-api-config.txt "Get Version". Before 3.10 the field is unknown: ignored, never an error."""
    from tests.test_fake_gerrit import basic, get_json, make_change, post_review

    async with FakeGerrit(user="patchwarden", http_password="secret", version=version) as g:
        change = make_change(g)
        async with aiohttp.ClientSession(base_url=g.url, headers=basic("patchwarden", "secret")) as http:
            assert await get_json(http, "/a/config/server/version") == version
            bad = [
                fix_input((1, 0, 2, 0), description=None),
                fix_input(),
                fix_input((2, 0, 1, 0)),  # ends before it starts
                fix_input((1, 0, 1, 5), (1, 3, 2, 0)),  # overlapping
            ]
            for fix in bad:
                comment = {"line": 1, "message": "m", "fix_suggestions": [fix]}
                status, text = await post_review(
                    http, change, "current", {"comments": {"src/new.py": [comment]}}
                )
                assert status == (400 if version == "3.10.1" else 200), (fix, text)
            good = {"line": 1, "message": "ok", "fix_suggestions": [fix_input((1, 0, 2, 0))]}
            status, text = await post_review(http, change, "current", {"comments": {"src/new.py": [good]}})
            assert status == 200, text
        stored = [c for c in g.changes[change.number].comments if c.message == "ok"]
        assert [bool(c.fix_suggestions) for c in stored] == [version == "3.10.1"]
        if version == "3.10.1":
            assert apply_fix_replacements(b"import os\n", stored[0].fix_suggestions[0]["replacements"]) == b""
            with pytest.raises(ValueError, match="line 3 is not in the file"):
                apply_fix_replacements(b"import os\n", fix_input((1, 0, 3, 0))["replacements"])

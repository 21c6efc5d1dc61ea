"""GitHub end to end with fixes: the real service posts suggested changes that the fake GitHub
commits as its pull request page does ("Commit suggestions"), and the result is what the fix
promised: exactly the unused import removed, `verify=False` dropped from a two-line call."""

from __future__ import annotations

import pytest

from tests.fakes.github import SUGGESTION_BLOCK, SuggestionRefused
from tests.service import fixture, post_github, running_service, wait_idle
from tests.test_github_e2e import github, opened_payload, settings_for  # noqa: F401 (fixture)

BASE = b'import subprocess\n\n\ndef ping(host):\n    return subprocess.call(["ping", host])\n'
HEAD = b"""import os
import subprocess

import requests


def ping(host):
    return subprocess.call(["ping", host])


def fetch(url):
    return requests.get(url,
                        verify=False, timeout=5)
"""
FIXED = HEAD.replace(b"import os\n", b"").replace(
    b"requests.get(url,\n                        verify=False, timeout=5)", b"requests.get(url, timeout=5)"
)


async def test_suggestions_applied_on_github_remove_exactly_the_findings(tmp_path, github):  # noqa: F811
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})
    async with running_service(settings_for(tmp_path, github)) as (url, service):
        assert (await post_github(url, "pull_request", opened_payload(), "d-1"))[0] == 202
        await wait_idle(service)
        posted = {c["line"]: c for c in github.review_comments}
        assert sorted(posted) == [1, 13]
        unused, tls = posted[1], posted[13]
        assert SUGGESTION_BLOCK.search(unused["body"])["text"] == ""  # deletes the commented line
        assert (unused["start_line"], unused["line"], unused["side"]) == (None, 1, "RIGHT")
        assert (tls["start_line"], tls["line"]) == (12, 13), "a two-line suggestion covers both lines"
        assert SUGGESTION_BLOCK.search(tls["body"])["text"] == "    return requests.get(url, timeout=5)\n"

        # Applied alone, the unused import's suggestion removes exactly that line.
        assert github.commit_suggestions(unused["id"]) == {"net.py": HEAD.replace(b"import os\n", b"", 1)}
        with pytest.raises(SuggestionRefused, match="Outdated suggestions cannot be applied"):
            github.commit_suggestions(tls["id"])  # made on the previous head

        # The next push: the bot sees the import gone and says so on its thread.
        sync = fixture("github/pull_request.synchronize.json")
        sync["pull_request"]["head"]["sha"] = sync["after"] = github.pull(
            "Codertocat", "Hello-World", 2
        ).head_sha
        assert (await post_github(url, "pull_request", sync, "d-2"))[0] == 202
        await wait_idle(service)
        assert [r["in_reply_to_id"] for r in github.replies] == [unused["id"]]

    # Both suggestions of the first review, as one batch on its head, give the fixed file.
    github.push("Codertocat", "Hello-World", 2, {"net.py": HEAD}, unused["commit_id"])
    assert github.commit_suggestions(unused["id"], tls["id"]) == {"net.py": FIXED}


async def test_the_fake_refuses_suggestions_as_the_pull_request_page_does(github):  # noqa: F811
    """DOCS incorporating-feedback-in-your-pull-request.md "Applying suggested changes"; the
    refusals in the page's words."""
    github.add_pull_from_payload(opened_payload(), {"net.py": BASE}, {"net.py": HEAD})

    def seeded(body: str, line: int = 1, side: str = "RIGHT") -> int:
        return github.add_review_comment("Codertocat", "Hello-World", 2, path="net.py", line=line,
                                         body=body, side=side)["id"]  # fmt: skip

    cases = [
        (seeded("no block here"), "has no suggestion"),
        (seeded("```suggestion\nimport os\n```"), "no changes were made to the code"),
        (seeded("```suggestion\nx\n```", line=1, side="LEFT"), "deleted lines is not supported"),
    ]
    for comment_id, refusal in cases:
        with pytest.raises(SuggestionRefused, match=refusal):
            github.commit_suggestions(comment_id)
    one, two = seeded("```suggestion\nimport sys\n```"), seeded("```suggestion\n```")
    with pytest.raises(SuggestionRefused, match="Only one suggestion per line can be applied in a batch"):
        github.commit_suggestions(one, two)
    github.pull("Codertocat", "Hello-World", 2).data["state"] = "closed"
    with pytest.raises(SuggestionRefused, match="closed"):
        github.commit_suggestions(one)
    assert github.pull("Codertocat", "Hello-World", 2).head_files["net.py"] == HEAD, "nothing committed"

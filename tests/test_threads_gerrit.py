"""Gerrit end to end: threads that follow the code (``unresolved: false`` on a fix, ``unresolved:
true`` on the old thread when the finding returns) and ``/ignore`` replies: the real service
over the SSH event stream and REST, real analyzers, the fake Gerrit.

Doc sections: rest-api-changes.txt "CommentInput" (``in_reply_to``, ``unresolved``), "List Change
Comments" (``in_reply_to`` on the replies), "Get Change" with ``DETAILED_LABELS``
(``permitted_voting_range`` of ``labels.*.all``); rest-api-groups.txt "List Group Members";
cmd-stream-events.txt ``comment-added`` (the change message "(1 comment)" of inline comments).
"""

from __future__ import annotations

import pytest

from tests.fakes.gerrit import FakeGerrit
from tests.service import running_service, wait_idle, wait_until
from tests.test_gerrit_e2e import FIXED, HEAD, PROJECT, gerrit, gerrit_settings, reviews_of  # noqa: F401

PATH = "nova/volume.py"


@pytest.fixture
def g(gerrit):  # noqa: F811 (the fake Gerrit of the Gerrit end-to-end tests, imported above)
    return gerrit


def summaries(g: FakeGerrit, number: int) -> list[dict]:
    """The bot's reviews with a summary (its thread answers to commands carry no message)."""
    return [r for r in reviews_of(g, number) if "patchwarden-run:" in r.get("message", "")]


def roots(g: FakeGerrit, number: int) -> dict[int, object]:
    """The bot's first comments by line."""
    return {
        c.line: c
        for c in g.changes[number].comments
        if c.in_reply_to is None and c.author_id == g.bot.account_id
    }


def replies_to(g: FakeGerrit, number: int, comment_id: str) -> list:
    """Every comment of the thread under ``comment_id`` (replies to replies included), oldest first."""
    comments = g.changes[number].comments
    thread, ids = [], {comment_id}
    for c in comments:  # comments are stored in the order they were posted
        if c.in_reply_to in ids:
            thread.append(c)
            ids.add(c.id)
    return thread


async def test_a_fixed_thread_is_resolved_and_a_returning_finding_reopens_it(tmp_path, g):
    async with running_service(gerrit_settings(tmp_path, g)) as (_url, service):
        await g.wait_for_stream(1, timeout=10)
        change = g.create_change(PROJECT, "master", g.owner, "Add run_hook", files={PATH: HEAD})
        await wait_until(lambda: reviews_of(g, change.number), what="review of patchset 1")
        await wait_idle(service)
        unused = roots(g, change.number)[3]

        g.upload_patchset(change, {PATH: FIXED})
        await wait_until(lambda: len(reviews_of(g, change.number)) == 2, what="patchset 2")
        await wait_idle(service)
        assert [(r.unresolved, r.message.split(".")[0]) for r in replies_to(g, change.number, unused.id)] == [
            (False, "Fixed in patchset 2")
        ]

        g.upload_patchset(change, {PATH: HEAD})  # the unused import is back
        await wait_until(lambda: len(reviews_of(g, change.number)) == 3, what="patchset 3")
        await wait_idle(service)
        third = reviews_of(g, change.number)[2]
        posted = third["comments"][PATH]
        assert [c for c in posted if not c.get("in_reply_to")] == [], "no new thread for a returning finding"
        assert [(c["in_reply_to"], c["unresolved"]) for c in posted] == [(unused.id, True)]
        assert posted[0]["message"].startswith("Back in patchset 3")
        assert len(roots(g, change.number)) == 2

        g.upload_patchset(change, {PATH: FIXED})  # fixed again: the last word counts
        await wait_until(lambda: len(reviews_of(g, change.number)) == 4, what="patchset 4")
        await wait_idle(service)
    answers = replies_to(g, change.number, unused.id)
    assert [(c.unresolved, c.message.split(" ")[0]) for c in answers] == [
        (False, "Fixed"),
        (True, "Back"),
        (False, "Fixed"),
    ]


async def test_ignore_by_a_trusted_reviewer_suppresses_the_finding_and_others_are_refused(tmp_path, g):
    core = g.add_account("Rita Core", "rcore", "rita@example.com")  # may vote Code-Review+2
    junior = g.add_account("Jim Junior", "jjunior", "jim@example.com")
    g.grant_label("Code-Review", -1, 1, account_id=junior)
    async with running_service(gerrit_settings(tmp_path, g)) as (_url, service):
        await g.wait_for_stream(1, timeout=10)
        change = g.create_change(PROJECT, "master", g.owner, "Add run_hook", files={PATH: HEAD})
        await wait_until(lambda: reviews_of(g, change.number), what="review of patchset 1")
        await wait_idle(service)
        execute = roots(g, change.number)[13]

        def reply(author: int, text: str, vote: int) -> None:
            g.add_comment(change, author, "", labels={"Code-Review": vote},
                               comments={PATH: [{"line": 13, "in_reply_to": execute.id, "message": text}]})  # fmt: skip

        reply(junior, "/ignore hooks are trusted", 1)
        await wait_until(lambda: len(replies_to(g, change.number, execute.id)) == 2, what="the refusal")
        reply(core, "/ignore --everywhere hooks are trusted", 1)  # no triage group: refused
        reply(core, "/ignore", 1)  # no reason
        reply(core, "/ignore run_hook only takes commands from nova.conf", 1)
        await wait_until(lambda: len(replies_to(g, change.number, execute.id)) == 8, what="the answers")
        await wait_idle(service)
        answers = [
            (c.unresolved, c.message)
            for c in replies_to(g, change.number, execute.id)
            if c.author_id == g.bot.account_id
        ]
        assert len(answers) == 4
        assert (
            answers[0][0] is True
            and "jjunior was not carried out: only reviewers who may vote Code-Review+2" in answers[0][1]
        )
        assert answers[1][0] is True and "needs gerrit.triage_group" in answers[1][1]
        assert answers[2][0] is True and "a reason is required" in answers[2][1]
        assert answers[3][0] is False and answers[3][1].startswith("Ignored by rcore for this change")

        g.add_comment(change, core, "/ignore all of it")  # not in a thread: told where it goes
        told = "/ignore by rcore was not carried out: `/ignore <reason>` goes in a reply on the finding's own thread"
        await wait_until(
            lambda: any(told in r.get("message", "") for r in reviews_of(g, change.number)), what="hint"
        )
        g.upload_patchset(change, {PATH: b"# touched\n" + HEAD})
        await wait_until(lambda: len(summaries(g, change.number)) == 2, what="patchset 2")
        await wait_idle(service)
        audit = await service.platforms["gerrit"].triage.audit()
    latest = summaries(g, change.number)[-1]
    assert latest["message"].splitlines()[0] == "No security defects are detected in the code."
    assert "ignored on this change by rcore" in latest["message"] and "nova.conf" in latest["message"]
    assert latest.get("comments", {}) == {}, "neither reposted nor answered 'fixed'"
    assert [(a.who, a.scope, a.fingerprint) for a in audit] == [("rcore", "change", audit[0].fingerprint)]
    assert audit[0].fingerprint in execute.message


async def test_a_triage_group_member_may_ignore_everywhere(tmp_path, g):
    lead = g.add_account("Lee Lead", "llead", "lee@example.com")
    g.add_group("nova-triage", [lead])
    async with running_service(gerrit_settings(tmp_path, g, triage_group="nova-triage")) as (
        _url,
        service,
    ):
        await g.wait_for_stream(1, timeout=10)
        first = g.create_change(PROJECT, "master", g.owner, "Add run_hook", files={PATH: HEAD})
        await wait_until(lambda: reviews_of(g, first.number), what="review of the first change")
        await wait_idle(service)
        unused = roots(g, first.number)[3]
        g.add_comment(first, lead, "", comments={PATH: [{"line": 3, "in_reply_to": unused.id,
                           "message": "/ignore --everywhere shutil is imported for its side effects"}]})  # fmt: skip
        await wait_until(lambda: replies_to(g, first.number, unused.id)[1:], what="the confirmation")
        second = g.create_change(PROJECT, "master", g.owner, "Same again", files={PATH: HEAD})
        await wait_until(lambda: reviews_of(g, second.number), what="review of the second change")
        await wait_idle(service)
    confirm = replies_to(g, first.number, unused.id)[1]
    assert confirm.unresolved is False and "every change of this repository" in confirm.message
    review = summaries(g, second.number)[0]
    assert [c["line"] for c in review["comments"][PATH]] == [13]
    assert "ignored in this repository by llead" in review["message"]

"""Triage and threads, the pure parts: the ``/ignore`` command, what an ignore does to a review,
the publishing plan's reopen and ignore rules, and the store's records."""

from __future__ import annotations

import pytest

from bot.model import Category, Comment, Finding, Severity
from bot.platforms.commands import COMMANDS, CommandLimits
from bot.platforms.publishing import Thread, plan
from bot.render import VERDICT_CLEAN, make_review
from bot.triage import CommandError, Ignore, IgnoreCommand, apply, parse_ignore
from bot.triage_store import open_store


def comment(fp: str, line: int, category: Category = Category.SECURITY, title: str = "Shell") -> Comment:
    finding = Finding("bandit", "B605", "a.py", line, line, "msg", Severity.HIGH, Severity.HIGH)
    return Comment(finding, line, line, True, category, title, "body", fp)


def ignore(fp: str, scope: str = "change", who: str = "rcore", reason: str = "ours") -> Ignore:
    key = "github:o/r#1" if scope == "change" else "github:o/r"
    return Ignore("github", scope, key, fp, who, reason, when=1_700_000_000.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ignore hosts come from the inventory", IgnoreCommand(False, "hosts come from the inventory")),
        ("Looks fine.\n  /ignore  test helper \n", IgnoreCommand(False, "test helper")),
        ("/ignore --everywhere vendored code", IgnoreCommand(True, "vendored code")),
        ("please do not /ignore this", None),
        ("/ignored already", None),
        ("", None),
    ],
)
def test_the_ignore_command_is_a_line_of_its_own_with_a_reason(text, expected):
    assert parse_ignore(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("/ignore", "a reason is required: `/ignore <reason>`"),
        ("/ignore --everywhere", "a reason is required: `/ignore --everywhere <reason>`"),
        ("/ignore a\n/ignore b", "write one `/ignore` per reply"),
        ("/ignore " + "x" * 501, "the reason is over 500 characters"),
    ],
)
def test_an_ignore_that_cannot_be_carried_out_says_how_to_write_it(text, error):
    with pytest.raises(CommandError) as raised:
        parse_ignore(text)
    assert str(raised.value) == error


def test_an_ignored_finding_leaves_the_verdict_the_cap_and_the_summary_lists_who_and_why():
    shell, other, unused = (
        comment("f1", 4),
        comment("f2", 9),
        comment("f3", 2, Category.QUALITY, "Unused import"),
    )
    review = make_review([shell, other, unused], [], cap=2, reviewed_files=1)
    assert review.overflow == [unused]
    triaged = apply(review, [ignore("f1"), ignore("f9")], cap=2)
    assert triaged.fingerprints == {"f1"}
    after = triaged.review
    assert after.summary.splitlines()[0] == "1 security defect is detected in the lines this change touches."
    assert [c.fingerprint for c in after.comments] == ["f3", "f2"] and after.overflow == [], (
        "the slot is freed"
    )
    assert after.summary.endswith(
        "**Ignored by triage** (not counted in the verdict):\n"
        "- **Shell** — a.py:4: ignored on this change by rcore on 2023-11-14: ours"
    )
    everything = apply(
        review, [ignore("f1"), ignore("f2", "repository", "lead", "vendored"), ignore("f3")], cap=2
    )
    assert everything.review.summary.splitlines()[0] == VERDICT_CLEAN
    assert everything.review.all_comments == []
    assert "ignored in this repository by lead on 2023-11-14: vendored" in everything.review.summary
    assert apply(review, [], cap=2).review is review


def test_the_change_s_own_decision_is_the_one_shown():
    review = make_review([comment("f1", 4)], [], cap=5, reviewed_files=1)
    triaged = apply(
        review, [ignore("f1", "repository", "lead", "wide"), ignore("f1", "change", "rcore", "here")], 5
    )
    assert [(d.who, d.reason) for _, d in triaged.ignored] == [("rcore", "here")]


def test_a_returning_finding_reopens_its_thread_and_a_fixed_one_is_answered_once():
    review = make_review([comment("back", 4), comment("open", 9)], [], cap=5, reviewed_files=1)
    threads = [
        Thread("back", 1, "a.py", 4, fixed=True),  # answered "fixed" earlier, found again
        Thread("open", 2, "a.py", 9),
        Thread("gone", 3, "a.py", 12),
        Thread("done", 4, "a.py", 15, fixed=True),
    ]
    result = plan(review, threads)
    assert [t.id for t in result.reopened] == [1]
    assert [t.id for t in result.fixed] == [3]
    assert result.new == [], "a returning finding is never a new thread"
    # The file of the thread is not in this patchset (Gerrit): no reply either way.
    assert plan(review, threads, replyable_paths={"b.py"}).reopened == []


def test_an_ignored_finding_is_neither_fixed_nor_reopened():
    threads = [Thread("ignored", 1, "a.py", 4), Thread("ignored-back", 2, "a.py", 6, fixed=True)]
    review = make_review([comment("ignored-back", 6)], [], cap=5, reviewed_files=1)
    triaged = apply(review, [ignore("ignored"), ignore("ignored-back")], cap=5)
    result = plan(triaged.review, threads, ignored=triaged.fingerprints | {"ignored"})
    assert result.fixed == [] and result.reopened == [] and result.new == []


def test_ignore_has_its_own_rate_limits_and_words():
    assert COMMANDS["ignore"].queued is False and COMMANDS["rescan"].queued is True
    now = [0.0]
    limits = CommandLimits(2, 600, 50, clock=lambda: now[0], command=COMMANDS["ignore"])
    assert limits.refusal("k", "u") is None and limits.refusal("k", "u") is None
    assert limits.refusal("k", "u") == (
        "this change was triaged with /ignore 2 times in the last 10 minutes; try again in 10 minute(s)"
    )
    now[0] = 601
    assert limits.refusal("k", "u") is None


async def test_the_store_keeps_decisions_and_an_append_only_audit(tmp_path):
    store = open_store(tmp_path)
    try:
        first = ignore("f1")
        assert await store.add(first) is True
        assert await store.add(ignore("f1", who="other", reason="again")) is False, "already in force"
        assert await store.add(ignore("f2", "repository", "lead")) is True
        assert [d.fingerprint for d in await store.decisions("github:o/r#1", "github:o/r")] == ["f1", "f2"]
        assert [d.fingerprint for d in await store.decisions("github:o/r#2", "github:o/r")] == ["f2"]
        assert await store.decisions("github:o/r#2", "github:o/other") == []
        assert [(a.who, a.reason) for a in await store.audit()] == [
            ("rcore", "ours"),
            ("other", "again"),
            ("lead", "ours"),
        ]
        assert (await store.decisions("github:o/r#1", "x"))[0] == first
        assert await store.claim_command("c1") is True and await store.claim_command("c1") is False
        assert await store.handled("c1") and not await store.handled("c2")
    finally:
        store.close()
    reopened = open_store(tmp_path)  # durable: the decisions survive a restart
    try:
        assert len(await reopened.audit()) == 3
    finally:
        reopened.close()

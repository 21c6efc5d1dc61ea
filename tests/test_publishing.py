"""The publishing decision, written once for every platform (bot.platforms.publishing): which
comments are new, repeated, fixed or outside the diff, and what a refused comment becomes."""

from __future__ import annotations

from collections.abc import Sequence

from bot.model import Category, Comment, Finding, Review, Severity
from bot.platforms.base import Rejected
from bot.platforms.publishing import Thread, plan, post_in_batches, summary_message
from bot.render import fingerprint

CODE = ["import os", "", "def run(cmd):", "    os.system(cmd)", ""]


def comment(
    fp: str, line: int = 4, path: str = "a.py", in_hunk: bool = True, title: str = "Shell"
) -> Comment:
    finding = Finding("bandit", "B605", path, line, line, "msg", Severity.HIGH, Severity.HIGH)
    return Comment(finding, line, line, in_hunk, Category.SECURITY, title, "body", fp)


def review(*comments: Comment, overflow: Sequence[Comment] = ()) -> Review:
    return Review("1 security defect is detected.", list(comments), list(overflow), [])


def test_first_push_posts_everything_and_replies_to_nothing():
    result = plan(review(comment("f1"), comment("f2", line=9)), [])
    assert [c.fingerprint for c in result.new] == ["f1", "f2"]
    assert result.repeated == [] and result.fixed == [] and result.outside == []
    assert not result.nothing_new


def test_a_push_that_moves_lines_repeats_nothing_and_fixes_nothing():
    """The fingerprint does not depend on the line: the same code two lines lower is the same
    finding, so its thread stands (not new, not fixed) and the summary says it is not repeated."""
    moved = ["", "", *CODE]
    before = Finding("bandit", "B605", "a.py", 4, 4, "msg", Severity.HIGH)
    after = Finding("bandit", "B605", "a.py", 6, 6, "msg", Severity.HIGH)
    fp = fingerprint(before, CODE)
    assert fingerprint(after, moved) == fp
    threads = [Thread(fp, 101, "a.py", line=4, revision=1)]
    result = plan(review(comment(fp, line=6)), threads, revision=2)
    assert result.new == [] and result.fixed == []
    assert [c.fingerprint for c in result.repeated] == [fp]
    assert result.nothing_new


def test_a_fixed_finding_gets_a_reply_on_its_thread():
    threads = [Thread("gone", 7, "a.py", line=4), Thread("stays", 8, "a.py", line=9)]
    result = plan(review(comment("stays", line=9)), threads)
    assert [t.id for t in result.fixed] == [7]
    assert result.new == []


def test_a_finding_already_marked_fixed_is_not_answered_again():
    threads = [Thread("gone", 7, "a.py", fixed=True)]
    assert plan(review(), threads).fixed == []


def test_a_finding_in_the_overflow_is_not_fixed():
    """Past the inline cap a finding is still there (listed in the summary): its thread stands."""
    result = plan(review(overflow=[comment("capped")]), [Thread("capped", 7, "a.py")])
    assert result.fixed == []


def test_a_fixed_reply_needs_its_file_where_the_platform_requires_it():
    """Gerrit replies on a file of the new patchset: a thread on a file no longer there waits."""
    threads = [Thread("gone", 7, "deleted.py"), Thread("also-gone", 8, "a.py")]
    result = plan(review(), threads, replyable_paths={"a.py"})
    assert [t.id for t in result.fixed] == [8]


def test_an_interrupted_try_on_the_same_revision_is_not_an_earlier_comment():
    """A comment a killed try posted on this very patchset is not posted again, and not counted as
    "already commented on an earlier patchset" either."""
    threads = [Thread("f1", 5, "a.py", revision=3)]
    result = plan(review(comment("f1")), threads, revision=3)
    assert result.new == [] and result.repeated == []


def test_a_finding_outside_the_diff_is_listed_where_only_diff_lines_take_comments():
    outside = comment("far", line=40, in_hunk=False, title="Far away")
    github = plan(review(comment("near"), outside), [])
    assert [c.fingerprint for c in github.new] == ["near"]
    assert [c.fingerprint for c in github.outside] == ["far"]
    text = summary_message(
        review(), github, [], platform="GitHub", revision_word="push", footer="<!-- run -->"
    )
    assert "**Outside the diff (not commentable inline on GitHub):**\n- **Far away** — a.py:40" in text
    assert not github.nothing_new  # a finding outside the diff still needs a summary
    gerrit = plan(review(comment("near"), outside), [], inline_outside_diff=True)
    assert [c.fingerprint for c in gerrit.new] == ["near", "far"] and gerrit.outside == []


async def test_a_refused_comment_loses_no_other_and_is_named_in_the_summary():
    comments = [comment(f"f{i}", line=i, title=f"T{i}") for i in range(1, 6)]
    posted: list[str] = []

    async def post(batch: Sequence[Comment]) -> None:
        if any(c.fingerprint == "f4" for c in batch):
            raise Rejected("422: line must be part of the diff")
        posted.extend(c.fingerprint for c in batch)

    refused = await post_in_batches(comments, post)
    assert [c.fingerprint for c in refused] == ["f4"]
    assert sorted(posted) == ["f1", "f2", "f3", "f5"]
    result = plan(review(*comments), [])
    text = summary_message(
        review(*comments), result, refused, platform="Gerrit", revision_word="patchset", footer="run: 9"
    )
    assert "**Gerrit refused these inline comments:**\n- **T4** — a.py:4" in text
    assert text.splitlines()[-1] == "run: 9"  # the run marker stays the last line


def test_the_summary_says_what_was_not_repeated():
    result = plan(review(comment("f1"), comment("f2")), [Thread("f1", 1, "a.py")])
    text = summary_message(review(), result, [], platform="GitHub", revision_word="push", footer="x")
    assert "1 finding(s) already commented on an earlier push are not repeated." in text


def test_skip_lists_match_the_same_way_on_every_platform():
    from bot.platforms.base import skip_listed

    assert skip_listed("OpenStack/Nova", ["openstack/*"])  # GitHub and Gerrit alike
    assert skip_listed("openstack/nova", ["OpenStack/Nova"])
    assert not skip_listed("openstack/nova", ["openstack/cinder", "other/*"])

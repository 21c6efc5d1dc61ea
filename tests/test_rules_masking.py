"""A change that removes the masking around a log call is a finding, whatever the value's name."""

from __future__ import annotations

from bot.analyzers.masking import removed_masking
from bot.model import Change, ChangedFile, FileStatus, Hunk

HEAD = (
    "from oslo_log import log as logging\n"
    "from oslo_utils import strutils\n"
    "\n"
    "LOG = logging.getLogger(__name__)\n"
    "\n"
    "\n"
    "def run(out, props):\n"
    '    LOG.debug("iscsiadm returned %s", out)\n'
    '    LOG.debug("props %s", strutils.mask_dict_password(props))\n'
)


def modified(removed: tuple[str, ...], added_lines: set[int]) -> ChangedFile:
    return ChangedFile(
        "os_brick/initiator/iscsi.py", FileStatus.MODIFIED, HEAD.encode(),
        added_lines=frozenset(added_lines), hunks=(Hunk(7, 9),), removed_text=removed,
    )  # fmt: skip


def test_unmasked_after_the_change_is_reported():
    removed = ('    LOG.debug("iscsiadm returned %s", strutils.mask_password(out))',)
    findings = removed_masking([modified(removed, {8})])
    assert [(f.rule_id, f.line, f.fields["arg"]) for f in findings] == [("masking-removed", 8, "out")]


def test_masking_kept_or_never_there_is_not_reported():
    assert removed_masking([modified(('    LOG.debug("props %s", props)',), {9})]) == []
    removed = ('    LOG.debug("props %s", strutils.mask_password(props))',)
    assert removed_masking([modified(removed, {9})]) == [], "still masked (mask_dict_password)"


async def test_the_engine_posts_it_with_the_catalog_text(engine, settings):
    removed = ('    LOG.debug("iscsiadm returned %s", strutils.mask_password(out))',)
    review = await engine.review(Change([modified(removed, {8})]), settings.review)
    [comment] = [c for c in review.comments if c.finding.rule_id == "masking-removed"]
    assert comment.line == 8 and "**Masking removed from a log call**" in comment.body

"""Filter stage: keep the findings the change is responsible for, and anchor each one.

reviewdog's modes (see bot.model.FilterMode). The anchor is the finding's first line when the
change touched it, else the first changed line inside the finding's range, so a comment always
sits on a line the author wrote.

One exception: a change that deletes the last use of an import or a local variable leaves the
name unused on a line it did not touch. That finding is the change's doing, so ``added`` and
``diff_context`` keep it, anchored on its own line (GitHub, which takes comments only inside
the diff, gets it in the summary).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.analyzers import traits_of
from bot.model import Change, ChangedFile, FilterMode, Finding


@dataclass(frozen=True)
class Anchored:
    finding: Finding
    line: int
    end_line: int
    in_hunk: bool


def _first(lines: range, pred) -> int | None:
    return next((n for n in lines if pred(n)), None)


def anchor(finding: Finding, file: ChangedFile | None, mode: FilterMode) -> Anchored | None:
    """The anchored finding, or ``None`` when ``mode`` drops it."""
    if file is None:
        if mode is not FilterMode.NOFILTER:
            return None
        return Anchored(finding, finding.line, finding.end_line, False)
    lines = finding.lines
    first_added = _first(lines, lambda n: n in file.added_lines)
    first_in_hunk = _first(lines, file.in_hunk)
    if mode is FilterMode.ADDED:
        line = first_added
    elif mode is FilterMode.DIFF_CONTEXT:
        line = first_in_hunk
    else:
        line = first_added or finding.line
    if line is None and mode is not FilterMode.FILE and left_unused_by_change(finding, file):
        line = finding.line
    if line is None:
        return None
    end = max(line, finding.end_line)
    hunk = next((h for h in file.hunks if line in h), None)
    # A range must stay inside the anchor's hunk (GitHub refuses ranges that leave the diff).
    end = min(end, hunk.end) if hunk else line
    return Anchored(finding, line, end, hunk is not None)


def left_unused_by_change(finding: Finding, file: ChangedFile) -> bool:
    """Whether a line the change removed (outside comments and imports) used the name this
    finding calls unused."""
    name = finding.fields.get("name")
    traits = traits_of(finding.tool)
    if finding.rule_id not in traits.unused_name_rules or traits.name_reference is None:
        return False
    if not name or not file.removed_text:
        return False
    used = traits.name_reference(name)
    return any(used.search(line.split("#", 1)[0]) for line in file.removed_text if not _is_import(line))


def _is_import(line: str) -> bool:
    return line.lstrip().startswith(("import ", "from "))


def select(findings: list[Finding], change: Change, mode: FilterMode) -> list[Anchored]:
    kept = []
    for finding in findings:
        anchored = anchor(finding, change.file(finding.path), mode)
        if anchored is not None:
            kept.append(anchored)
    return kept

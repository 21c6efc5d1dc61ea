"""Fixes (platform-free, no I/O): a tool's edit of the head content as a :class:`Fix`, the
checks before one is offered, applying fixes, and the patch they make.

A fix that is wrong is worse than none, so one is offered only when (``offer``): the lines it
replaces still hold what the tool saw, every one was added or modified by the change, it stays
inside the hunk of the comment it goes with and within ``MAX_LINES``, it really changes
something, and the file it leaves still parses (Python, with ``ast``; a file of another
language gets no fix, as nothing here can check it). Files whose line breaks are not all
``\\n`` (``\\r``, form feeds, Unicode separators) get none either: the tools, Python and the
platforms would not agree on what "line 12" is.
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings
from collections.abc import Iterable, Sequence

from bot.model import ChangedFile, Fix

#: Characters ``str.splitlines`` (and some tools) take for line breaks besides ``\n``.
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
PYTHON_SUFFIXES = (".py", ".pyi")
MAX_LINES = 30  # a longer suggestion is more to check than the fix saves: none is offered


def split_lines(text: str) -> list[str]:
    """``text`` as lines that keep their ``\\n`` (the last one may have none); only ``\\n`` breaks."""
    return [part for part in re.split(r"(?<=\n)", text) if part]


def plain_lines(text: str) -> bool:
    """Whether ``\\n`` is the only line break in ``text`` (else no fix is built or offered)."""
    return not _OTHER_BREAKS.search(text)


def from_edits(text: str, edits: Iterable[tuple[int, int, str]], description: str) -> Fix | None:
    """The line-range fix that applying ``edits`` (character offsets ``start, end`` into ``text``
    and the text to put there; non-overlapping) makes, trimmed to the lines it really changes.
    None if the edits overlap, fall outside ``text``, or change nothing."""
    if not plain_lines(text):
        return None
    ordered = sorted(edits, key=lambda e: (e[0], e[1]))
    new, position = [], 0
    for start, end, content in ordered:
        if not 0 <= position <= start <= end <= len(text):
            return None
        new += [text[position:start], content]
        position = end
    new.append(text[position:])
    return between(text, "".join(new), description)


def between(old: str, new: str, description: str) -> Fix | None:
    """The fix that turns ``old`` into ``new``: one line range, without the common lines around it."""
    if old == new or not plain_lines(new):
        return None
    a, b = split_lines(old), split_lines(new)
    if not a:
        return None
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    if len(a) - prefix - suffix == 0:  # a pure insertion: keep one old line, every platform needs one
        if prefix:
            prefix -= 1
        else:
            suffix -= 1
    kept = slice(prefix, len(a) - suffix)
    return Fix(
        description, prefix + 1, len(a) - suffix, "".join(b[prefix : len(b) - suffix]), "".join(a[kept])
    )


def offsets_of_rows(text: str) -> list[int]:
    """Character offset of the start of each line (index 0 is line 1), for ``(row, column)`` tools."""
    starts = [0]
    for line in split_lines(text):
        starts.append(starts[-1] + len(line))
    return starts


def offset_at(starts: list[int], row: int, column: int) -> int | None:
    """Character offset of 1-based ``row`` and ``column`` (None outside the text)."""
    if not 1 <= row <= len(starts) or column < 1:
        return None
    offset = starts[row - 1] + column - 1
    return offset if row == len(starts) or offset <= starts[row] else None


def apply(text: str, fixes: Sequence[Fix]) -> str:
    """``text`` with ``fixes`` applied; ValueError if two overlap, one falls outside ``text``
    or its lines no longer hold what the fix was made for."""
    lines = split_lines(text)
    last_start = len(lines) + 1
    for fix in sorted(fixes, key=lambda f: f.start_line, reverse=True):
        if "".join(lines[fix.start_line - 1 : fix.end_line]) != fix.original:
            raise ValueError(f"lines {fix.start_line}-{fix.end_line} are not what the fix was made for")
        if not 1 <= fix.start_line <= fix.end_line < last_start:
            raise ValueError(
                f"fix of lines {fix.start_line}-{fix.end_line} overlaps another or leaves the file"
            )
        lines[fix.start_line - 1 : fix.end_line] = [fix.replacement]
        last_start = fix.start_line
    return "".join(lines)


def region_end(fix: Fix) -> tuple[int, int]:
    """Where the lines a fix replaces end, as (1-based line, 0-based UTF-16 character), for the
    platforms that address text so (Gerrit, SARIF): the start of the next line when the last one
    ends in a newline (an empty replacement then deletes the lines), else the end of that line."""
    if fix.original.endswith("\n"):
        return fix.end_line + 1, 0
    last = fix.original.rsplit("\n", 1)[-1]
    return fix.end_line, len(last.encode("utf-16-le")) // 2


def original(text: str, fix: Fix) -> str:
    """The lines of ``text`` that ``fix`` replaces."""
    return "".join(split_lines(text)[fix.start_line - 1 : fix.end_line])


def parses(path: str, text: str) -> bool:
    """Whether ``text`` parses in the language of ``path`` (only Python can be checked here)."""
    if not path.endswith(PYTHON_SUFFIXES):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def widen(fix: Fix, text: str, start: int, end: int) -> Fix:
    """``fix`` extended, with the file's own lines, to cover lines ``start``..``end`` too
    (a GitHub suggestion replaces exactly the lines its comment covers)."""
    lines = split_lines(text)
    first, last = min(fix.start_line, start), max(fix.end_line, end)
    if (first, last) == (fix.start_line, fix.end_line):
        return fix
    before = "".join(lines[first - 1 : fix.start_line - 1])
    after = "".join(lines[fix.end_line : last])
    return Fix(fix.description, first, last, before + fix.replacement + after, before + fix.original + after)


def offer(fix: Fix, file: ChangedFile, line: int, end_line: int) -> Fix | None:
    """``fix`` as it may be offered on the comment at ``line``..``end_line`` of ``file``, or None.

    See the module docstring for the checks. The result covers the comment's lines as well.
    """
    try:
        text = (file.content or b"").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not plain_lines(text) or not 1 <= fix.start_line <= fix.end_line <= len(split_lines(text)):
        return None
    if original(text, fix) != fix.original:  # the tool saw other content (a pruned copy, say)
        return None
    if any(n not in file.added_lines for n in range(fix.start_line, fix.end_line + 1)):
        return None
    hunk = next((h for h in file.hunks if line in h), None)
    widened = widen(fix, text, line, max(line, end_line))
    if hunk is None or widened.start_line not in hunk or widened.end_line not in hunk:
        return None
    if widened.end_line - widened.start_line >= MAX_LINES:
        return None
    fixed = apply(text, [fix])
    if fixed == text or not parses(file.path, fixed):
        return None
    return widened


def unified_diff(path: str, old: str, new: str) -> str:
    """A ``git apply``-able patch of one file (``\\ No newline at end of file`` included)."""
    out = []
    for line in difflib.unified_diff(split_lines(old), split_lines(new), f"a/{path}", f"b/{path}", n=3):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)

"""Large files focused on the changed lines (bot.focus): same findings on the changed lines as the
whole file gives, for a fraction of the analyzers' time (bench/focus.py measures the fraction on two
Nova releases)."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.analyzers import traits_of
from bot.config import RepoConfig
from bot.focus import focus
from bot.model import Change, ChangedFile, FileStatus, FilterMode, Hunk
from bot.workspace import Workspace
from tests.focus_check import compare, engine, windows_around

LARGE = Path(__file__).parent / "fixtures" / "large" / "nova-34.0.0-nova-tests-unit-compute-test_api.py.txt"
LARGE_PATH = "nova/tests/unit/compute/test_api.py"

SOURCE = b"""import os

CONF = {"a": 1}


@decorated
def untouched(x):
    return os.system(x)


class Kept(Base):
    attr = 1

    def touched(self):
        return os.system(self.cmd)

    def other(self):
        return 2


class Gone:
    def method(self):
        pass
"""


def test_definitions_outside_the_kept_lines_are_blanked_and_line_numbers_kept():
    touched = SOURCE.splitlines().index(b"        return os.system(self.cmd)") + 1
    focused = focus(SOURCE, [range(touched, touched + 1)])
    assert focused is not None
    before, after = SOURCE.splitlines(), focused.splitlines()
    assert len(before) == len(after)
    ast.parse(focused)
    for number, line in enumerate(before, 1):
        kept = after[number - 1]
        if line.startswith((b"import", b"CONF", b"class Kept", b"    attr")) or number == touched:
            assert kept == line
    text = focused.decode()
    assert "def untouched" not in text and "@decorated" not in text  # decorators go with their function
    assert "def other" not in text and "class Gone" not in text
    assert "    def touched(self):" in text  # the enclosing method and class stay whole


def test_nothing_to_blank_or_not_python_gives_none():
    assert focus(SOURCE, [range(1, len(SOURCE.splitlines()) + 1)]) is None  # every line kept
    assert focus(SOURCE, []) is None
    assert focus(b"def f(:\n    pass\n" * 10, [range(1, 2)]) is None  # does not parse: analyzers get it whole


def test_crlf_endings_are_kept():
    source = SOURCE.replace(b"\n", b"\r\n")
    focused = focus(source, [range(1, 2)])
    assert focused is not None and focused.count(b"\r\n") == source.count(b"\r\n")
    assert b"\n" not in focused.replace(b"\r\n", b"")


async def test_large_real_file_same_findings_on_the_changed_lines():
    """Nova's 430 KB test_api.py, changed where the analyzers have something to say (a hunk around
    every finding of the whole file) and at ten lines in the middle: Semgrep and Bandit find the
    same on those lines in the focused copy as in the whole file."""
    content = LARGE.read_bytes()
    e = engine()
    whole = ChangedFile(LARGE_PATH, FileStatus.MODIFIED, content)
    findings = []
    with Workspace([whole]) as ws:
        for analyzer in e.analyzers:
            if not traits_of(analyzer.name).whole_module:
                findings += (await analyzer.run(ws.root, [LARGE_PATH], 300.0)).findings
    assert {f.tool for f in findings} == {"bandit", "semgrep"}
    around = windows_around(findings, whole)
    middle = len(content.splitlines()) // 2
    around.hunks += (Hunk(middle, middle + 9),)
    result = await compare(e, [around])
    assert result.bytes_focused < result.bytes_whole / 5  # it was focused
    assert len(result.whole) >= 10
    assert result.missed == set() and result.extra == set() and result.errors == []
    await e.close()


async def test_pipeline_focuses_only_where_the_filter_keeps_hunks_only():
    content = LARGE.read_bytes()
    f = ChangedFile(
        LARGE_PATH, FileStatus.MODIFIED, content, added_lines=frozenset({100}), hunks=(Hunk(97, 103),)
    )
    e = engine()
    assert e.focused_copies([f], FilterMode.ADDED)[0].content != content
    assert e.focused_copies([f], FilterMode.DIFF_CONTEXT)[0].content != content
    assert e.focused_copies([f], FilterMode.FILE) == [f]
    assert e.focused_copies([f], FilterMode.NOFILTER) == [f]
    assert engine(focus_min_bytes=0).focused_copies([f], FilterMode.ADDED) == [f]
    # and the review of such a change names no problem: focusing is not a blind spot
    review = await e.review(Change([f]), RepoConfig())
    assert review.errors == []
    await e.close()

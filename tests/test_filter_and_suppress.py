"""Filter modes, anchoring and suppression comments (pure stages, no analyzers)."""

from __future__ import annotations

import pytest

from bot.filter import anchor, left_unused_by_change, select
from bot.model import Change, ChangedFile, FileStatus, FilterMode, Finding, Hunk, Severity
from bot.suppress import is_suppressed

FILE = ChangedFile(
    path="m.py",
    status=FileStatus.MODIFIED,
    content=b"\n" * 40,
    added_lines=frozenset({10, 11, 30}),
    hunks=(Hunk(7, 14), Hunk(27, 33)),
)


def finding(line: int, end: int | None = None, tool: str = "bandit", rule: str = "B602", **fields) -> Finding:
    return Finding(tool, rule, "m.py", line, end or line, "msg", Severity.HIGH, Severity.HIGH, dict(fields))


@pytest.mark.parametrize(
    ("mode", "line", "end", "expected"),
    [
        (FilterMode.ADDED, 10, None, (10, True)),  # first line changed: anchored there
        (FilterMode.ADDED, 9, 11, (10, True)),  # multi-line statement: first changed line inside it
        (FilterMode.ADDED, 12, None, None),  # context line only
        (FilterMode.ADDED, 20, None, None),  # outside every hunk
        (FilterMode.DIFF_CONTEXT, 12, None, (12, True)),
        (FilterMode.DIFF_CONTEXT, 5, 8, (7, True)),
        (FilterMode.DIFF_CONTEXT, 20, None, None),
        (FilterMode.FILE, 20, None, (20, False)),
        (FilterMode.FILE, 29, 31, (30, True)),  # a changed line inside the range is preferred
        (FilterMode.NOFILTER, 2, None, (2, False)),
    ],
)
def test_filter_modes_and_anchor(mode, line, end, expected):
    result = anchor(finding(line, end), FILE, mode)
    assert (None if result is None else (result.line, result.in_hunk)) == expected


@pytest.mark.parametrize(
    ("name", "removed", "expected"),
    [
        ("nova.utils", "    utils.execute(cmd)", True),  # from nova import utils
        ("os.path", "    return os.path.join(a, b)", True),  # import os.path
        ("nova.utils", "    self.utils.execute(cmd)", False),  # another object's attribute
        ("nova.utils", "    # utils.execute used to be here", False),  # a comment
        ("nova.utils", "from nova import utils, exception", False),  # the import line itself
        ("nova.utils", "    utilsx = 1", False),  # a longer name
    ],
)
def test_an_import_left_unused_by_removed_lines(name, removed, expected):
    file = ChangedFile(
        "m.py", FileStatus.MODIFIED, b"\n" * 40, added_lines=frozenset(), removed_text=(removed,)
    )
    unused = finding(2, tool="ruff", rule="F401", name=name)
    assert left_unused_by_change(unused, file) is expected
    anchored = anchor(unused, file, FilterMode.ADDED)
    assert (anchored is not None and (anchored.line, anchored.in_hunk)) == ((2, False) if expected else False)
    assert not left_unused_by_change(finding(2, tool="bandit", rule="B602", name=name), file)


def test_files_outside_the_change_only_pass_nofilter():
    other = Finding("bandit", "B602", "elsewhere.py", 1, 1, "", Severity.HIGH)
    change = Change([FILE])
    assert select([other], change, FilterMode.FILE) == []
    assert len(select([other], change, FilterMode.NOFILTER)) == 1


@pytest.mark.parametrize(
    ("line", "tool", "rule", "suppressed"),
    [
        ("subprocess.call(x, shell=True)  # nosec", "bandit", "B602", True),
        ("subprocess.call(x, shell=True)  # nosec", "semgrep", "subprocess-shell-injection", True),
        ("subprocess.call(x, shell=True)  # nosec", "ruff", "F821", False),
        ("subprocess.call(x, shell=True)  # nosec B602", "bandit", "B602", True),
        ("subprocess.call(x, shell=True)  # nosec: B602, B607", "bandit", "B607", True),
        ("subprocess.call(x, shell=True)  # nosec B607", "bandit", "B602", False),
        ("subprocess.call(x, shell=True)  # nosec B602 - reviewed by security", "bandit", "B602", True),
        (
            "subprocess.call(x, shell=True)  # nosec subprocess_popen_with_shell_equals_true",
            "bandit",
            "B602",
            True,
        ),
        ("utils.execute(cmd)  # nosemgrep", "semgrep", "execute-unsanitized-command", True),
        ("utils.execute(cmd)  # nosemgrep", "bandit", "B602", False),
        (
            "utils.execute(cmd)  # nosemgrep: execute-unsanitized-command",
            "semgrep",
            "execute-unsanitized-command",
            True,
        ),
        (
            "utils.execute(cmd)  # nosemgrep: rules.semgrep.execute-unsanitized-command",
            "semgrep",
            "execute-unsanitized-command",
            True,
        ),
        ("utils.execute(cmd)  # nosemgrep: other-rule", "semgrep", "execute-unsanitized-command", False),
        ("import os  # noqa", "ruff", "F401", True),
        ("import os  # noqa: F401", "ruff", "F401", True),
        ("import os  # NOQA:F401,F811", "ruff", "F811", True),
        ("import os  # noqa: F811", "ruff", "F401", False),
        ("import os  # noqa", "bandit", "B404", False),
        ("import os", "ruff", "F401", False),
    ],
)
def test_suppression_forms(line, tool, rule, suppressed):
    f = finding(
        1, tool=tool, rule=rule, test_name="subprocess_popen_with_shell_equals_true" if rule == "B602" else ""
    )
    assert is_suppressed(f, [line]) is suppressed


def test_marker_on_any_line_of_a_multiline_finding():
    lines = ["subprocess.call(", "    x, shell=True)  # nosec B602"]
    assert is_suppressed(finding(1, 2), lines)
    assert not is_suppressed(finding(1, 1), lines)

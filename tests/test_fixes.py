"""Fix suggestions from the engine, with the real analyzers: every offered fix, applied to the
head content, parses and no longer has its finding; no fix touches a line the change did not."""

from __future__ import annotations

import difflib
import json
import subprocess
from collections import Counter

from bot import fixes
from bot.cache import ResultCache
from bot.model import Change, ChangedFile, FileStatus, Fix, Hunk
from bot.pipeline import Engine
from bot.render import suggestion_block
from tests.test_check_cli import run_check
from tests.test_engine import added

FIXABLE = """\
import os
import sys, re
from json import dumps, loads
from collections import (
    OrderedDict,
    defaultdict,
)

import requests
import yaml
import requests


def fetch(url, path):
    unused = 1
    with open(path) as f:
        conf = yaml.load(f)
    resp = requests.get(url,
                        verify=False, timeout=10)
    if conf is "x":
        return None
    return re.sub("a", "b", dumps(resp.json())), defaultdict(list)
"""


def changed_lines(old: str, new: str) -> set[int]:
    """Old-side lines that applying a fix replaced or deleted (difflib, not the fix's own span)."""
    matcher = difflib.SequenceMatcher(a=fixes.split_lines(old), b=fixes.split_lines(new), autojunk=False)
    return {n + 1 for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for n in range(i1, i2)}


def kinds(review) -> Counter:
    return Counter((c.finding.tool, c.finding.rule_id) for c in review.all_comments)


async def test_each_fix_parses_and_removes_its_finding_and_nothing_else(settings):
    engine = Engine.from_settings(settings.engine, cache=ResultCache())
    review = await engine.review(Change([added("m.py", FIXABLE)]), settings.review)
    fixed = [c for c in review.all_comments if c.fix is not None]
    # From ruff, four unused imports (one of `import a, b`, one of `from x import a, b`, one line of a
    # parenthesised import), a re-import, `is` with a literal; Semgrep: yaml.load, verify=False
    # over two lines. ruff's fix of the unused variable is unsafe: none.
    assert sorted((c.finding.rule_id, c.fix.start_line, c.fix.end_line) for c in fixed) == [
        ("F401", 1, 1), ("F401", 2, 2), ("F401", 3, 3), ("F401", 5, 5), ("F632", 20, 20),
        ("F811", 11, 11), ("tls-verification-disabled", 18, 19), ("yaml-unsafe-load", 17, 17),
    ]  # fmt: skip
    assert [c.fix for c in review.all_comments if c.finding.rule_id == "F841"] == [None]
    assert {c.fix.replacement for c in fixed if c.finding.rule_id != "F401" or c.line != 1} >= {
        "import re\n", "from json import dumps\n", "        conf = yaml.safe_load(f)\n",
        "    resp = requests.get(url, timeout=10)\n", '    if conf == "x":\n',
    }  # fmt: skip
    for comment in fixed:
        one = fixes.apply(FIXABLE, [comment.fix])
        assert fixes.parses("m.py", one)
        assert changed_lines(FIXABLE, one) <= set(range(comment.fix.start_line, comment.fix.end_line + 1))
    after = await engine.review(
        Change([added("m.py", fixes.apply(FIXABLE, [c.fix for c in fixed]))]), settings.review
    )
    # What had a fix is gone (the real analyzers, run again); what had none is still there.
    assert kinds(after) == kinds(review) - Counter((c.finding.tool, c.finding.rule_id) for c in fixed)
    assert not any(c.fix for c in after.all_comments)
    again = await engine.review(Change([added("m.py", FIXABLE)]), settings.review)  # from the cache
    assert [c.fix for c in again.all_comments] == [c.fix for c in review.all_comments]


def modified(path: str, text: str, lines: set[int], removed: tuple[str, ...] = ()) -> ChangedFile:
    hunks = tuple(Hunk(max(1, n - 3), n + 3) for n in sorted(lines))
    return ChangedFile(path, FileStatus.MODIFIED, text.encode(), None, frozenset(lines), hunks, removed)


async def test_no_fix_touches_a_line_the_change_did_not_touch(settings, engine):
    # Line 3 (`verify=False`) is old code: the Semgrep fix would rewrite it, so no fix is offered.
    # `import os` is old too: the change removed its last use, so it is reported, with no fix.
    text = "import os\nimport requests\nr = requests.get('https://x',\n                 verify=False)\n"
    text += "\n\ndef f():\n    return 1\n"
    file = modified("m.py", text, {3, 7, 8}, removed=("    return os.getcwd()\n",))
    review = await engine.review(Change([file]), settings.review)
    found = {(c.finding.rule_id, c.line): c for c in review.all_comments}
    assert ("tls-verification-disabled", 3) in found and ("F401", 1) in found
    assert all(c.fix is None for c in review.all_comments)
    # The same lines, all added: both fixes are offered.
    review = await engine.review(Change([added("m.py", text)]), settings.review)
    assert {c.finding.rule_id for c in review.all_comments if c.fix} == {"tls-verification-disabled", "F401"}


def test_a_fix_that_leaves_the_file_unparsable_or_changes_nothing_is_not_offered():
    file = added("m.py", "import os\nx = 1\n")
    assert fixes.offer(Fix("break it", 2, 2, "x = (\n", "x = 1\n"), file, 2, 2) is None
    assert fixes.offer(Fix("same", 2, 2, "x = 1\n", "x = 1\n"), file, 2, 2) is None
    shell = added("run.sh", "curl -k x\n")
    assert fixes.offer(Fix("shell", 1, 1, "curl x\n", "curl -k x\n"), shell, 1, 1) is None  # no parser
    # Made for other content (the tool saw another version of line 1): not offered.
    assert fixes.offer(Fix("stale", 1, 1, "", "import sys\n"), file, 1, 1) is None
    assert fixes.offer(Fix("ok", 1, 1, "", "import os\n"), file, 1, 1) == Fix("ok", 1, 1, "", "import os\n")
    # A comment on lines 1-2 gets the fix widened to its range, with the file's own line 2.
    widened = fixes.offer(Fix("ok", 1, 1, "", "import os\n"), file, 1, 2)
    assert widened == Fix("ok", 1, 2, "x = 1\n", "import os\nx = 1\n")


def test_suggestion_fences_outgrow_backticks_and_patches_apply():
    assert suggestion_block(Fix("d", 1, 1, "x = '```'\n", "x = 1\n")) == "````suggestion\nx = '```'\n````"
    assert suggestion_block(Fix("d", 1, 1, "", "x = 1\n")) == "```suggestion\n```"
    # Gerrit and SARIF ranges: the next line's start, or the end of a last line (UTF-16 units).
    assert fixes.region_end(Fix("d", 1, 1, "", "import os\n")) == (2, 0)
    assert fixes.region_end(Fix("d", 2, 2, "", "é = '𝄞'")) == (2, 8)
    patch = fixes.unified_diff("a.py", "import os\nx = 1", "x = 1")
    assert (
        patch == "--- a/a.py\n+++ b/a.py\n@@ -1,2 +1 @@\n-import os\n x = 1\n\\ No newline at end of file\n"
    )


HEAD_SOURCE = """import shutil
import yaml


def load(f):
    return yaml.load(f)
"""
FIXED_SOURCE = """import yaml


def load(f):
    return yaml.safe_load(f)
"""


def test_check_prints_the_fixes_as_a_patch_and_sarif_and_applies_them(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "X = 1\n"}, "base")
    repo.commit({"a.py": HEAD_SOURCE}, "head")
    root = str(repo.root)
    patch = run_check("--repo", root, "--format", "diff")
    assert patch.returncode == 0, patch.stderr
    assert patch.stdout.startswith("--- a/a.py\n+++ b/a.py\n") and "-import shutil\n" in patch.stdout
    sarif = json.loads(run_check("--repo", root, "--format", "sarif").stdout)
    fixes_by_line = {
        r["locations"][0]["physicalLocation"]["region"]["startLine"]: r["fixes"][0]
        for r in sarif["runs"][0]["results"]
        if "fixes" in r
    }
    assert sorted(fixes_by_line) == [1, 6]
    change = fixes_by_line[1]["artifactChanges"][0]
    assert change["artifactLocation"]["uri"] == "a.py"
    assert change["replacements"] == [
        {"deletedRegion": {"startLine": 1, "startColumn": 1, "endLine": 2, "endColumn": 1},
         "insertedContent": {"text": ""}}
    ]  # fmt: skip
    subprocess.run(["git", "-C", root, "apply", "--check"], input=patch.stdout, text=True, check=True)
    applied = run_check("--repo", root, "--fix")
    assert applied.returncode == 0 and "a.py: fixed" in applied.stderr
    assert (repo.root / "a.py").read_text() == FIXED_SOURCE
    # The working tree no longer holds what was reviewed: a second --fix leaves it alone.
    again = run_check("--repo", root, "--fix")
    assert "a.py: not fixed: the working tree differs" in again.stderr
    assert (repo.root / "a.py").read_text() == FIXED_SOURCE
    # --staged reviews the index against HEAD (what a pre-commit hook sees).
    (repo.root / "b.py").write_text("import glob\n")
    repo.git("add", "b.py")
    staged = json.loads(run_check("--repo", root, "--staged", "--format", "json").stdout)
    assert [(c["path"], c["rule_id"], c["fix"]["replacement"]) for c in staged["comments"]] == [
        ("b.py", "F401", "")
    ]

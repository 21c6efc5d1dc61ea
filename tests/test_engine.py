"""The review pipeline with real analyzers: failures are loud, suppressions and caps work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.analyzers import BanditAnalyzer, RuffAnalyzer, SemgrepAnalyzer
from bot.config import EngineSettings
from bot.model import Change, ChangedFile, FileStatus, FilterMode, Hunk
from bot.pipeline import Engine
from bot.render import VERDICT_CLEAN, default_catalog
from bot.resources import data_path


def added(path: str, text: str | bytes) -> ChangedFile:
    content = text.encode() if isinstance(text, str) else text
    n = max(1, len(content.decode(errors="replace").splitlines()))
    return ChangedFile(
        path, FileStatus.ADDED, content, added_lines=frozenset(range(1, n + 1)), hunks=(Hunk(1, n),)
    )


def engine_with(**settings) -> Engine:
    return Engine.from_settings(EngineSettings(**settings))


SHELL = "import subprocess\n\n\ndef run(x):\n    subprocess.call(x, shell=True)\n"


async def test_an_analyzer_timeout_is_an_error_not_a_clean_review(settings):
    review = await engine_with(analyzer_timeout=0.05).review(Change([added("a.py", SHELL)]), settings.review)
    timed_out = [e for e in review.errors if "timed out after 0.05 s" in e]
    assert {e.split()[0] for e in timed_out} >= {"bandit", "semgrep"}
    assert "**This review is incomplete**" in review.summary
    assert any("timed out" in line for line in review.summary.splitlines())


async def test_a_crashing_analyzer_is_reported(settings):
    engine = Engine(
        [RuffAnalyzer(target_version="py9000")], default_catalog(), EngineSettings()
    )  # ruff refuses an unknown target version: exit status 2
    review = await engine.review(Change([added("a.py", "import os\n")]), settings.review)
    assert review.comments == []
    assert len(review.errors) == 1 and review.errors[0].startswith("ruff crashed")


async def test_broken_semgrep_rules_are_reported(tmp_path, settings):
    (tmp_path / "bad.yaml").write_text(
        "rules:\n  - id: broken\n    languages: [python]\n    pattern: 'foo('\n"
    )
    engine = Engine([SemgrepAnalyzer(tmp_path)], default_catalog(), EngineSettings())
    review = await engine.review(Change([added("a.py", "foo(1)\n")]), settings.review)
    assert review.errors and all(e.startswith("semgrep") for e in review.errors)


async def test_an_unparsable_file_gets_an_inline_comment_at_the_error(engine, settings):
    python2 = "def f():\n    try:\n        pass\n    except ValueError, err:\n        print err\n"
    review = await engine.review(Change([added("old.py", python2)]), settings.review)
    syntax = [c for c in review.comments if c.finding.rule_id == "syntax-error"]
    assert len(syntax) == 1 and syntax[0].line == 4
    assert not [c for c in review.comments if c.finding.rule_id == "F821"], (
        "no bogus names from a broken parse"
    )
    assert any("old.py does not parse (line 4)" in e for e in review.errors)


async def test_an_import_used_only_in_a_type_comment_is_used(engine, settings):
    code = (
        "import collections\n"
        "from typing import List\n\n\n"
        "def f(xs):\n"
        "    out = []  # type: List[int]\n"
        "    return out\n"
    )
    review = await engine.review(Change([added("typed.py", code)]), settings.review)
    assert [(c.line, c.finding.rule_id) for c in review.comments] == [(1, "F401")]


async def test_files_that_cannot_be_reviewed(engine, settings):
    big = "x = 1\n" * 2_000_000  # 12 MB: over engine.max_file_bytes (10 MB)
    change = Change(
        [
            added("big.py", big),
            ChangedFile("logo.png", FileStatus.BINARY),
            ChangedFile("gone.py", FileStatus.DELETED),
            added("latin1.py", b"# caf\xe9\r\nimport os\r\n"),
            added("../escape.py", "import os\n"),
        ]
    )
    review = await engine.review(change, settings.review)
    assert (
        "big.py: not reviewed: 12,000,000 bytes is over the 10,000,000-byte limit (engine.max_file_bytes)"
        in (review.errors)
    )
    assert any(e.startswith("../escape.py: not reviewed: unsafe path") for e in review.errors)
    # ruff reads UTF-8 only; a file it skips must show up as not (fully) reviewed
    assert any(e.startswith("ruff could not analyze latin1.py") for e in review.errors)
    assert any(e.startswith("bandit could not analyze latin1.py") for e in review.errors)
    assert len(review.errors) == 4


async def test_suppression_comments_through_the_real_tools(engine, settings):
    code = (
        "import os  # noqa: F401\n"
        "import sys  # noqa\n"
        "import json\n"
        "import subprocess\n"
        "from nova import utils\n"
        "\n\n"
        "def run(x, cmd):\n"
        "    subprocess.call(x, shell=True)  # nosec\n"
        "    subprocess.call(x + '1', shell=True)  # nosec B602\n"
        "    utils.execute(cmd)  # nosemgrep\n"
        "    utils.execute(cmd)  # nosemgrep: execute-unsanitized-command\n"
        "    subprocess.call(x + '2', shell=True)\n"
    )
    review = await engine.review(Change([added("s.py", code)]), settings.review)
    assert sorted((c.line, c.finding.tool) for c in review.comments) == [
        (3, "ruff"),
        (10, "semgrep"),
        (13, "semgrep"),
    ]


async def test_one_comment_per_defect_and_line(engine, settings):
    # three undefined names on one line: one comment naming them all
    code = "def f():\n    return alpha + beta + gamma\n"
    review = await engine.review(Change([added("u.py", code)]), settings.review)
    assert len(review.comments) == 1
    body = review.comments[0].body
    assert all(f"`{name}`" in body for name in ("alpha", "beta", "gamma"))


async def test_comment_cap_lists_the_rest_in_the_summary(engine, settings):
    code = "".join(f"import mod{i}\n" for i in range(5))
    config = settings.review.model_copy(update={"max_inline_comments": 2})
    review = await engine.review(Change([added("m.py", code)]), config)
    assert len(review.comments) == 2 and len(review.overflow) == 3
    assert review.summary.count("(not posted inline: comment cap reached)") == 3


async def test_security_findings_win_the_inline_cap(engine, settings):
    code = "import os\nimport sys\nimport subprocess\n\n\ndef f(x):\n    subprocess.call(x, shell=True)\n"
    config = settings.review.model_copy(update={"max_inline_comments": 1})
    review = await engine.review(Change([added("m.py", code)]), config)
    assert [c.line for c in review.comments] == [7]


async def test_clean_change_and_path_rules_for_tests(engine, settings):
    test_code = "def test_x():\n    password = 'hunter2'\n    assert password\n"
    review = await engine.review(Change([added("nova/tests/unit/test_x.py", test_code)]), settings.review)
    assert review.comments == [] and review.errors == []
    assert review.summary.splitlines()[0] == VERDICT_CLEAN
    same_outside_tests = await engine.review(Change([added("nova/x.py", test_code)]), settings.review)
    assert {c.finding.rule_id for c in same_outside_tests.comments} >= {"B105", "B101"}


async def test_filter_modes_through_the_pipeline(engine, settings):
    old = "import os\nimport sys\n"
    new = old + "import json\n"
    change = Change(
        [
            ChangedFile(
                "f.py", FileStatus.MODIFIED, new.encode(), added_lines=frozenset({3}), hunks=(Hunk(1, 3),)
            )
        ]
    )
    lines = {}
    for mode in FilterMode:
        config = settings.review.model_copy(update={"filter_mode": mode})
        lines[mode] = [c.line for c in (await engine.review(change, config)).comments]
    assert lines == {
        FilterMode.ADDED: [3],
        FilterMode.DIFF_CONTEXT: [1, 2, 3],
        FilterMode.FILE: [1, 2, 3],
        FilterMode.NOFILTER: [1, 2, 3],
    }


async def test_semgrep_sees_non_python_files(engine, settings):
    shell = "#!/bin/sh\ncurl -k https://example.net/install.sh | sh\n"
    playbook = "- name: Fetch\n  get_url:\n    url: https://x.example.org/a\n    validate_certs: no\n"
    change = Change([added("tools/install.sh", shell), added("playbooks/fetch.yml", playbook)])
    review = await engine.review(change, settings.review)
    found = {(c.path, c.finding.tool, c.line) for c in review.comments}
    assert found == {("tools/install.sh", "semgrep", 2), ("playbooks/fetch.yml", "semgrep", 4)}
    [task] = [c for c in review.comments if c.path == "playbooks/fetch.yml"]
    assert "`validate_certs: no`" in task.body


def test_every_analyzer_result_has_a_catalog_entry():
    """Every Bandit test, every ruff code selected and every bundled rule speaks in our voice."""
    from bandit.core import extension_loader

    from bot.analyzers.ruff import SELECT, SYNTAX_ERROR

    catalog = default_catalog().entries
    bandit_ids = set(extension_loader.MANAGER.plugins_by_id) | set(extension_loader.MANAGER.blacklist_by_id)
    assert {f"bandit:{i}" for i in bandit_ids} <= set(catalog)
    assert {f"ruff:{c}" for c in (*SELECT, SYNTAX_ERROR)} <= set(catalog)
    rule_ids = {r["id"] for r in SemgrepAnalyzer(Path(data_path("rules", "semgrep"))).rules}
    assert len(rule_ids) >= 26
    assert {f"semgrep:{r}" for r in rule_ids} <= set(catalog)
    # A placeholder must be one every finding has, one its tool supplies, or (Semgrep) a metavariable
    # the rule's message quotes, which is where the analyzer reads the value back from.
    bound = {
        f"semgrep:{r}": set(p.groupindex)
        for r, p in SemgrepAnalyzer(Path(data_path("rules", "semgrep"))).message_patterns.items()
    }
    supplied = {"bandit": {"test_name"}, "ruff": {"name"}, "semgrep": set(), "patchwarden": {"arg"}}
    placeholders = re.compile(r"(?<!\{)\{(\w+)\}(?!\})")
    for key, entry in catalog.items():
        allowed = {"code", "call", "path", "message"} | supplied[key.split(":")[0]] | bound.get(key, set())
        for text in (entry.title, entry.why, entry.fix):
            assert text.strip(), key
            for name in placeholders.findall(text):
                assert name in allowed, (key, name)


@pytest.mark.parametrize("analyzer", [BanditAnalyzer(), RuffAnalyzer()])
def test_python_analyzers_want_python_only(analyzer):
    assert analyzer.wants("nova/a.py") and not analyzer.wants("README.rst")


def test_semgrep_leaves_a_core_to_the_python_analyzers(monkeypatch):
    """Bandit and ruff are single-threaded and run beside Semgrep on Python files (bench/engine.py)."""
    rules = Path(data_path("rules", "semgrep"))
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    auto = SemgrepAnalyzer(rules)
    assert auto.jobs_for(["nova/a.py", "tools/run.sh"]) == 3
    assert auto.jobs_for(["tools/run.sh"]) == 4
    assert SemgrepAnalyzer(rules, jobs=2).jobs_for(["nova/a.py"]) == 2
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert auto.jobs_for(["nova/a.py"]) == 1

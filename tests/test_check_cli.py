"""End to end: the real `patchwarden check` process on real git repositories, real analyzers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.render import VERDICT_CLEAN

BASE = """import os
import subprocess

from nova import utils


def old_helper(cmd, x):
    utils.execute(cmd)
    subprocess.call(x, shell=True)
"""

HEAD = """import os
import subprocess
import shutil

from nova import utils


def old_helper(cmd, x):
    utils.execute(cmd)
    subprocess.call(x, shell=True)


def new_helper(cmd, x):
    utils.execute(cmd)
    subprocess.call(x, shell=True)
"""


def run_check(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture
def three_patterns_repo(make_repo):
    repo = make_repo()
    repo.commit({"nova/virt/helpers.py": BASE}, "base")
    repo.commit({"nova/virt/helpers.py": HEAD}, "add new_helper")
    return repo


def comments_by_line(out: str) -> dict[int, list[dict]]:
    doc = json.loads(out)
    lines: dict[int, list[dict]] = {}
    for c in doc["comments"]:
        assert c["path"] == "nova/virt/helpers.py"
        lines.setdefault(c["line"], []).append(c)
    return lines


def test_only_the_changed_lines_get_comments(three_patterns_repo):
    proc = run_check("--repo", str(three_patterns_repo.root), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["errors"] == []
    lines = comments_by_line(proc.stdout)
    # line 3: unused `shutil`; 14: utils.execute(cmd); 15: subprocess.call(x, shell=True)
    assert sorted(lines) == [3, 14, 15]
    assert all(len(v) == 1 for v in lines.values()), "one comment per defect and line"
    unused = lines[3][0]
    assert (unused["tool"], unused["rule_id"], unused["category"]) == ("ruff", "F401", "quality")
    assert "`shutil`" in unused["body"]
    execute = lines[14][0]
    assert execute["tool"] == "semgrep" and execute["category"] == "security"
    assert "utils.execute" in execute["body"]
    shell = lines[15][0]
    assert shell["category"] == "security" and shell["severity"] == "high"
    assert "subprocess.call" in shell["body"]
    summary = doc["summary"]
    assert summary.splitlines()[0] == "2 security defects are detected in the lines this change touches."
    assert "nova/virt/helpers.py:14" in summary and "nova/virt/helpers.py:3" in summary
    assert summary.index("**Security defects**") < summary.index("**Other findings**")
    for c in doc["comments"]:
        assert c["body"].startswith("**") and "**Fix:**" in c["body"] and len(c["fingerprint"]) == 16


def test_file_mode_reports_unchanged_lines_too(three_patterns_repo):
    proc = run_check("--repo", str(three_patterns_repo.root), "--format", "json", "--filter-mode", "file")
    assert proc.returncode == 0, proc.stderr
    lines = comments_by_line(proc.stdout)
    assert sorted(lines) == [1, 3, 9, 10, 14, 15]
    # The same defect in old and new code has distinct fingerprints (different functions).
    fingerprints = [c["fingerprint"] for v in lines.values() for c in v]
    assert len(set(fingerprints)) == 6


def test_fingerprint_survives_a_line_shift(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "import os\n"}, "base")
    repo.commit({"a.py": "import os\nimport shutil\n"}, "one")
    first = json.loads(run_check("--repo", str(repo.root), "--format", "json").stdout)["comments"]
    repo.commit({"a.py": '"""Doc."""\n\nimport os\nimport shutil\n'}, "shift")
    second = json.loads(run_check("--repo", str(repo.root), "--format", "json", "--base", "HEAD~2").stdout)
    assert [c["line"] for c in first] == [2] and [c["line"] for c in second["comments"]] == [4]
    assert first[0]["fingerprint"] == second["comments"][0]["fingerprint"]


def test_clean_change_verdict_and_text_format(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "def f(x):\n    return x\n"}, "base")
    repo.commit({"a.py": "def f(x):\n    return x + 1\n"}, "clean")
    proc = run_check("--repo", str(repo.root))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == VERDICT_CLEAN


def test_sarif_output(three_patterns_repo):
    proc = run_check("--repo", str(three_patterns_repo.root), "--format", "sarif")
    doc = json.loads(proc.stdout)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "patchwarden"
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(run["results"]) == 3
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] in (3, 14, 15)
        assert result["level"] in ("error", "warning", "note")
        assert result["partialFingerprints"]["patchwarden/v1"]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_fail_level_and_usage_errors(three_patterns_repo, tmp_path):
    root = str(three_patterns_repo.root)
    assert run_check("--repo", root, "--format", "json", "--fail-level", "high").returncode == 1
    assert (
        run_check("--repo", root, "--format", "json", "--fail-level", "high", "--base", "HEAD").returncode
        == 0
    )
    not_a_repo = run_check("--repo", str(tmp_path))
    assert not_a_repo.returncode == 2 and "error:" in not_a_repo.stderr
    bad_rev = run_check("--repo", root, "--base", "no-such-rev")
    assert bad_rev.returncode == 2 and "no-such-rev" in bad_rev.stderr
    assert run_check("--repo", root, "--filter-mode", "everything").returncode == 2


def test_broken_repo_config_falls_back_to_defaults(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "x = 1\n"}, "base")
    repo.commit(
        {
            "a.py": "import os\nx = 1\n",
            ".patchwarden.yaml": "filter_mode: sideways\nmax_inline_comments: many\n",
        }
    )
    proc = run_check("--repo", str(repo.root), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [c["rule_id"] for c in doc["comments"]] == ["F401"]  # reviewed with the defaults
    assert len(doc["errors"]) == 1
    assert "filter_mode" in doc["errors"][0] and "max_inline_comments" in doc["errors"][0]
    assert "using the default configuration" in doc["errors"][0]
    incomplete = doc["summary"].split("**This review is incomplete**", 1)[1]
    assert "filter_mode: Input should be 'added', 'diff_context', 'file' or 'nofilter'" in incomplete


def test_repo_config_opt_out_of_an_analyzer_and_a_rule(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "x = 1\n"}, "base")
    repo.commit(
        {
            "a.py": "import os\nimport subprocess\n\n\ndef f(x):\n    subprocess.call(x, shell=True)\n",
            ".patchwarden.yaml": "analyzers: {ruff: false}\nskip_rules: [B602, 'semgrep:*']\n",
        }
    )
    doc = json.loads(run_check("--repo", str(repo.root), "--format", "json").stdout)
    assert doc["comments"] == [] and doc["errors"] == []
    assert doc["summary"].splitlines()[0] == VERDICT_CLEAN


def test_demo_runs_on_embedded_defaults():
    proc = run_check("--demo")
    assert proc.returncode == 0, proc.stderr
    assert "security defect" in proc.stdout.splitlines()[0]
    assert "nova/volume_utils.py:" in proc.stdout


def test_deleting_the_last_use_of_an_import_reports_the_import(make_repo):
    """The change leaves `utils` and `size` unused on lines it did not touch: it caused that."""
    repo = make_repo()
    base = (
        "import os\n"
        "from nova import utils\n\n\n"
        "def resize(path):\n"
        "    size = os.path.getsize(path)\n"
        "    utils.execute('qemu-img', 'resize', path, size)\n"
        "    # a comment naming os\n"
        "    return path\n"
    )
    head = (
        "import os\n"
        "from nova import utils\n\n\n"
        "def resize(path):\n"
        "    size = os.path.getsize(path)\n"
        "    return path\n"
    )
    repo.commit({"nova/resize.py": base}, "base")
    repo.commit({"nova/resize.py": head}, "drop the resize call")
    doc = json.loads(run_check("--repo", str(repo.root), "--format", "json").stdout)
    found = sorted((c["line"], c["rule_id"]) for c in doc["comments"])
    assert found == [(2, "F401"), (6, "F841")]
    assert "`nova.utils`" in doc["comments"][0]["body"]

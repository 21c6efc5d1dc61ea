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
    repo.commit(
        {"a.py": "x = 1\n", ".patchwarden.yaml": "filter_mode: sideways\nmax_inline_comments: many\n"}
    )
    repo.commit({"a.py": "import os\nx = 1\n"})
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
    repo.commit(
        {
            "a.py": "x = 1\n",
            ".patchwarden.yaml": "analyzers: {ruff: false}\nskip_rules: [B602, 'semgrep:*']\n",
        },
        "base",
    )
    repo.commit({"a.py": "import os\nimport subprocess\n\n\ndef f(x):\n    subprocess.call(x, shell=True)\n"})
    doc = json.loads(run_check("--repo", str(repo.root), "--format", "json").stdout)
    assert doc["comments"] == [] and doc["errors"] == []
    assert doc["summary"].splitlines()[0] == VERDICT_CLEAN


SHELL_CALL = "import subprocess\n\n\ndef f(x):\n    subprocess.call(x, shell=True)\n"
WEAKENED = (
    "enabled: false\n"
    "fail_level: null\n"
    "analyzers: {bandit: false, semgrep: false, ruff: false}\n"
    "skip_rules: ['*', B602, 'semgrep:*']\n"
    "exclude: ['**']\n"
    "min_severity: high\n"
    "min_confidence: high\n"
)


def shell_rules(doc: dict) -> set[tuple[int, str]]:
    return {(c["line"], c["severity"]) for c in doc["comments"]}


def test_a_change_cannot_weaken_its_own_gate(make_repo):
    """`.patchwarden.yaml` comes from the base revision, as the service reads the target branch."""
    repo = make_repo()
    repo.commit({"a.py": "import subprocess\n", ".patchwarden.yaml": "fail_level: high\n"}, "base")
    repo.commit({"a.py": SHELL_CALL, ".patchwarden.yaml": WEAKENED}, "switch the bot off")
    (repo.root / ".github").mkdir()
    (repo.root / ".github/patchwarden.yaml").write_text(WEAKENED)  # uncommitted: never read either
    for extra in ([], ["--fail-level", "high"]):
        proc = run_check("--repo", str(repo.root), "--format", "json", *extra)
        assert proc.returncode == 1, proc.stderr  # the base's fail_level: high still gates
        doc = json.loads(proc.stdout)
        assert (5, "high") in shell_rules(doc) and doc["errors"] == []
        assert (
            ".patchwarden.yaml is changed by this change; the review uses the base revision's version"
            in proc.stderr
        )
        assert ".github/patchwarden.yaml is changed" not in proc.stderr  # unchanged between commits

    # A new `.github/patchwarden.yaml` in the head is not read either, and is named.
    repo.commit({".patchwarden.yaml": "fail_level: high\n", ".github/patchwarden.yaml": WEAKENED}, "again")
    proc = run_check("--repo", str(repo.root), "--base", "HEAD~2", "--format", "json")
    assert proc.returncode == 1 and (5, "high") in shell_rules(json.loads(proc.stdout))
    assert ".github/patchwarden.yaml is changed by this change" in proc.stderr
    assert "note: .patchwarden.yaml" not in proc.stderr  # same text on base and head


def test_the_base_revisions_config_is_honoured(make_repo):
    repo = make_repo()
    repo.commit({"a.py": "import subprocess\n", ".patchwarden.yaml": "skip_rules: [B602, 'semgrep:*']\n"})
    repo.commit({"a.py": SHELL_CALL}, "add the call")
    proc = run_check("--repo", str(repo.root), "--format", "json", "--fail-level", "high")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["comments"] == [] and "note:" not in proc.stderr

    off = make_repo()
    off.commit({"a.py": "import subprocess\n", ".github/patchwarden.yaml": "enabled: false\n"})
    off.commit({"a.py": SHELL_CALL}, "add the call")
    proc = run_check("--repo", str(off.root), "--format", "json", "--fail-level", "high")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["comments"] == [] and doc["errors"] == []
    assert ".github/patchwarden.yaml on " in doc["summary"] and "enabled: false" in doc["summary"]


def test_an_explicit_config_file_wins(make_repo, tmp_path):
    repo = make_repo()
    repo.commit({"a.py": "import subprocess\n"})
    repo.commit({"a.py": SHELL_CALL, ".patchwarden.yaml": "skip_rules: [B602, 'semgrep:*']\n"})
    assert run_check("--repo", str(repo.root), "--fail-level", "high").returncode == 1
    mine = repo.root / ".patchwarden.yaml"
    proc = run_check(
        "--repo", str(repo.root), "--fail-level", "high", "--config", str(mine), "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["comments"] == [] and "note:" not in proc.stderr


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

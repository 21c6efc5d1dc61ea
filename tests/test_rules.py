"""The bundled Semgrep rules: their own annotated tests, and the fast CLI's parity with `semgrep scan`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

from bot.analyzers.base import tool_path
from bot.analyzers.semgrep import ENV, SemgrepAnalyzer, message_pattern
from bot.resources import data_path

RULES = Path(data_path("rules", "semgrep"))


def test_rule_tests_pass():
    """`semgrep --test`: every rule's `# ruleid:` lines match and its `# ok:` lines do not."""
    proc = subprocess.run(
        [tool_path("semgrep"), "--test", "--json", "--metrics=off", "--disable-version-check", str(RULES)],
        capture_output=True, text=True, timeout=300, env={**os.environ, **ENV},
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads(proc.stdout)
    assert report["config_missing_tests"] == [] and report["config_with_errors"] == []
    checks = {
        rule: check for result in report["results"].values() for rule, check in result["checks"].items()
    }
    assert set(checks) == {r["id"] for r in SemgrepAnalyzer(RULES).rules}, "every rule is tested"
    for rule, check in checks.items():
        expected = [line for m in check["matches"].values() for line in m["expected_lines"]]
        assert check["passed"] and expected, f"{rule}: {check}"
    # The rules' fix-regex, as Semgrep applies it, gives the `X.fixed.py` expectations.
    assert report["config_missing_fixtests"] == []
    assert set(report["fixtest_results"]) >= {
        str(RULES / "python-unsafe-apis.py"),
        str(RULES / "transport.py"),
    }
    assert all(r["passed"] for r in report["fixtest_results"].values()), report["fixtest_results"]


def test_every_rule_has_a_test_file():
    for rule_file in SemgrepAnalyzer(RULES).rule_files:
        siblings = [p for p in RULES.glob(rule_file.stem + ".*") if p != rule_file]
        assert siblings, f"{rule_file.name} has no annotated test file"


def test_fast_cli_finds_exactly_what_semgrep_scan_finds(tmp_path):
    """The bot runs osemgrep (`--experimental`) for its start-up cost; it must agree with `semgrep scan`."""
    targets = sorted(p for p in RULES.iterdir() if p not in SemgrepAnalyzer(RULES).rule_files)
    for p in targets:
        shutil.copy(p, tmp_path / p.name)
    paths = [p.name for p in targets]

    async def run(experimental: bool):
        result = await SemgrepAnalyzer(RULES, experimental=experimental).run(tmp_path, paths, timeout=300)
        return result, sorted((f.rule_id, f.path, f.line, f.end_line) for f in result.findings)

    fast, fast_found = asyncio.run(run(True))
    slow, slow_found = asyncio.run(run(False))
    assert fast.errors == slow.errors == []
    assert len(fast_found) > 20
    assert fast_found == slow_found
    assert_values_recovered(fast.findings)


def assert_values_recovered(findings) -> None:
    """Every value a rule's message quotes comes back as a field the catalog can name."""
    analyzer = SemgrepAnalyzer(RULES)
    for finding in findings:
        pattern = analyzer.message_patterns.get(finding.rule_id)
        if pattern is None:
            continue
        wanted = set(pattern.groupindex)
        assert wanted <= set(finding.fields), (finding.rule_id, finding.path, finding.line, finding.message)
        for name in wanted:
            value = finding.fields[name]
            assert value.strip() and value in " ".join(finding.message.split()), (finding.rule_id, name)


def test_message_pattern_reads_values_back():
    pattern = message_pattern("This call hands `$ARG` to a shell, and `$ARG` again; `$URL`.")
    match = pattern.fullmatch(
        "This call hands `cmd % (a, b)` to a shell, and `cmd % (a, b)` again; `http://x`."
    )
    assert match and match.groupdict() == {"arg": "cmd % (a, b)", "url": "http://x"}
    assert pattern.fullmatch("This call hands `a` to a shell, and `b` again; `c`.") is None

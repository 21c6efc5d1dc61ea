"""The bundled Semgrep rules: their own annotated tests, and the fast CLI's parity with `semgrep scan`."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from bot.analyzers.base import tool_path
from bot.analyzers.semgrep import ENV, SemgrepAnalyzer
from bot.resources import data_path

RULES = Path(data_path("rules", "semgrep"))


def test_rule_tests_pass():
    proc = subprocess.run(
        [tool_path("semgrep"), "--test", "--metrics=off", "--disable-version-check", str(RULES)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, **ENV},
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "All tests passed" in output or "passed" in output.lower()
    assert "0/" not in output.split("\n")[-2]  # a summary with zero passing would not be green


def test_every_rule_has_a_test_file():
    for rule_file in RULES.glob("*.yaml"):
        siblings = [p for p in RULES.glob(rule_file.stem + ".*") if p.suffix != ".yaml"]
        assert siblings, f"{rule_file.name} has no annotated test file"


def test_fast_cli_finds_exactly_what_semgrep_scan_finds(tmp_path):
    """The bot runs osemgrep (`--experimental`) for its start-up cost; it must agree with `semgrep scan`."""
    targets = sorted(p for p in RULES.iterdir() if p.suffix != ".yaml")
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

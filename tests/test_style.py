"""The code base stays ruff-clean (lint and format), as the project's style asks."""

from __future__ import annotations

import subprocess

from bot.analyzers.base import tool_path
from tests.conftest import ROOT


def test_ruff_lint_and_format_are_clean():
    lint = subprocess.run(
        [tool_path("ruff"), "check", "bot", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = subprocess.run(
        [tool_path("ruff"), "format", "--check", "bot", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout[-3000:]

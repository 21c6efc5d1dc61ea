"""Bandit, run as a subprocess with every test enabled (thresholds are applied by the pipeline)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot.analyzers.base import AnalyzerError, AnalyzerResult, run_tool, stderr_tail, tool_path
from bot.model import Finding, Severity


class BanditAnalyzer:
    name = "bandit"

    def wants(self, path: str) -> bool:
        return path.endswith(".py")

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        started = time.monotonic()
        argv = [tool_path("bandit"), "--format", "json", "--quiet", "--", *[f"./{p}" for p in paths]]
        out = await run_tool(argv, root, timeout)
        # Bandit exits 1 when it found something; anything else without JSON is a crash.
        try:
            report = json.loads(out.stdout)
        except json.JSONDecodeError:
            raise AnalyzerError(f"crashed: {stderr_tail(out)}") from None
        result = AnalyzerResult(self.name)
        for err in report.get("errors", []):
            result.errors.append(
                f"bandit could not analyze {_rel(err.get('filename', '?'))}: {err.get('reason')}"
            )
        for r in report.get("results", []):
            line_range = r.get("line_range") or [r["line_number"]]
            result.findings.append(
                Finding(
                    tool=self.name,
                    rule_id=r["test_id"],
                    path=_rel(r["filename"]),
                    line=min(line_range),
                    end_line=max(line_range),
                    message=r.get("issue_text", ""),
                    severity=Severity(r.get("issue_severity", "LOW").lower()),
                    confidence=Severity(r.get("issue_confidence", "LOW").lower()),
                    fields={"test_name": r.get("test_name", "")},
                )
            )
        result.seconds = time.monotonic() - started
        return result


def _rel(name: str) -> str:
    return os.path.normpath(name)

"""Bandit, run as a subprocess with every test enabled (thresholds are applied by the pipeline)."""

from __future__ import annotations

import os
from pathlib import Path

from bot.analyzers.base import AnalyzerResult, run_json_tool, tool_path
from bot.model import Finding, Severity


class BanditAnalyzer:
    name = "bandit"

    def wants(self, path: str) -> bool:
        return path.endswith(".py")

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        argv = [tool_path("bandit"), "--format", "json", "--quiet", "--", *[f"./{p}" for p in paths]]
        # Bandit exits 1 when it found something: its JSON decides, not the exit code.
        report, _ = await run_json_tool(argv, root, timeout)
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
        return result


def _rel(name: str) -> str:
    return os.path.normpath(name)

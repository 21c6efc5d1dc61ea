"""Bandit with every test enabled (thresholds are applied by the pipeline).

By default it runs in warm worker processes (bot.analyzers.bandit_worker) that keep Bandit loaded
between reviews and report exactly what the CLI reports; ``warm=False`` runs the CLI,
``bandit --format json --quiet``, as a fresh subprocess per review. Either way a crash or a
timeout raises AnalyzerError: never a clean result.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
from pathlib import Path

from bot.analyzers.bandit_worker import BanditWorkerPool, WorkerFailure, WorkerUnavailable
from bot.analyzers.base import (
    AnalyzerError,
    AnalyzerResult,
    Traits,
    code_digest,
    run_json_tool,
    tool_identity,
    tool_path,
)
from bot.model import Finding, Severity

log = logging.getLogger(__name__)
OPTIONS = "--format json --quiet"  # what the CLI is given besides the files (and the cache key says)


class BanditAnalyzer:
    name = "bandit"
    traits = Traits(precedence=1)

    def __init__(self, warm: bool = True, pool: BanditWorkerPool | None = None) -> None:
        self.warm = warm
        self._pool = pool

    @property
    def pool(self) -> BanditWorkerPool:
        if self._pool is None:  # one per analyzer (per engine), started on first use
            self._pool = BanditWorkerPool()
        return self._pool

    def wants(self, path: str) -> bool:
        return path.endswith(".py")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def cache_key(self) -> str:
        return f"{_identity()} {OPTIONS}"

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        targets = [f"./{p}" for p in paths]
        report = None
        if self.warm:
            try:
                report = json.loads(await self.pool.run(str(root), targets, timeout))
            except WorkerUnavailable as exc:
                log.warning("warm bandit unavailable, running its CLI from now on: %s", exc)
                self.warm = False
            except WorkerFailure as exc:
                raise AnalyzerError(str(exc)) from None
            except ValueError:
                raise AnalyzerError("crashed: its worker answered garbage") from None
        if report is None:
            argv = [tool_path("bandit"), *OPTIONS.split(), "--", *targets]
            # Bandit exits 1 when it found something: its JSON decides, not the exit code.
            report, _ = await run_json_tool(argv, root, timeout)
        return self.parse(report)

    def parse(self, report: dict) -> AnalyzerResult:
        """Bandit's JSON report -> findings, and one error line per file it could not analyze."""
        result = AnalyzerResult(self.name)
        for err in report.get("errors", []):
            path = _rel(err.get("filename", "?"))
            reason = err.get("reason")
            # A syntax error recurs for the same bytes; "exception while scanning file" may not.
            cacheable = str(reason).startswith("syntax error")
            result.add_file_error(path, f"bandit could not analyze {path}: {reason}", cacheable=cacheable)
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


@functools.cache
def _identity() -> str:
    every = importlib.metadata.entry_points()  # one walk of the installed distributions (~25 ms)
    plugins = sorted(
        f"{ep.group}:{ep.name}={ep.value}@{ep.dist.version if ep.dist else '?'}"
        for group in ("bandit.plugins", "bandit.blacklists")
        for ep in every.select(group=group)
    )
    return f"{tool_identity('bandit', 'bandit')} {code_digest('bot.analyzers.bandit')} {plugins}"

"""Semgrep with the bundled rules only: one run per change, all files named explicitly.

It runs the OCaml CLI (``semgrep scan --experimental``), which reports what the Python wrapper
reports at about a seventh of the start-up cost (see bench/ and tests/test_semgrep_parity.py).
Files are named explicitly because Semgrep silently skips ``tests/`` and large files when given a
directory.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path, PurePosixPath

import yaml

from bot.analyzers.base import AnalyzerError, AnalyzerResult, run_json_tool, tool_path
from bot.model import Finding, Severity

# Semgrep language -> file name endings it is given (only languages a bundled rule uses count).
LANGUAGE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "bash": (".sh", ".bash"),
    "sh": (".sh", ".bash"),
    "yaml": (".yaml", ".yml"),
    "json": (".json",),
    "dockerfile": ("Dockerfile", ".dockerfile"),
    "javascript": (".js", ".mjs", ".cjs"),
    "typescript": (".ts", ".tsx"),
    "go": (".go",),
    "generic": (),
}
_SEVERITY = {"ERROR": Severity.HIGH, "WARNING": Severity.MEDIUM, "INFO": Severity.LOW}
ENV = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}


class SemgrepAnalyzer:
    name = "semgrep"

    def __init__(self, rules_dir: Path, experimental: bool = True, max_target_bytes: int = 5_000_000) -> None:
        self.rules_dir = rules_dir
        self.experimental = experimental
        self.max_target_bytes = max_target_bytes

    @cached_property
    def suffixes(self) -> tuple[str, ...]:
        """File endings of every language a bundled rule covers."""
        languages: set[str] = set()
        for rule_file in self.rule_files:
            for rule in (yaml.safe_load(rule_file.read_text()) or {}).get("rules", []):
                languages.update(lang.lower() for lang in rule.get("languages", []))
        return tuple(sorted({s for lang in languages for s in LANGUAGE_SUFFIXES.get(lang, ())}))

    @cached_property
    def rule_files(self) -> list[Path]:
        return sorted(p for p in self.rules_dir.glob("*.yaml") if p.is_file())

    def wants(self, path: str) -> bool:
        return PurePosixPath(path).name.endswith(self.suffixes) if self.suffixes else False

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        if not self.rule_files:
            raise AnalyzerError(f"no rules in {self.rules_dir}")
        argv = [
            tool_path("semgrep"), "scan", "--json", "--metrics=off", "--disable-version-check",
            "--no-git-ignore", "--quiet", f"--max-target-bytes={self.max_target_bytes}",
            f"--timeout={max(1, int(timeout))}",
        ]  # fmt: skip
        if self.experimental:
            argv.append("--experimental")
        for rule_file in self.rule_files:
            argv += ["--config", str(rule_file)]
        argv += ["--", *paths]
        report, _ = await run_json_tool(argv, root, timeout, env=ENV)
        result = AnalyzerResult(self.name)
        for err in report.get("errors", []):
            where = err.get("path") or (err.get("spans") or [{}])[0].get("file", "")
            result.errors.append(
                f"semgrep: {where or 'run'}: {err.get('type', 'error')}: {_short(err.get('message', ''))}"
            )
        for r in report.get("results", []):
            extra = r.get("extra", {})
            meta = extra.get("metadata", {}) or {}
            result.findings.append(
                Finding(
                    tool=self.name,
                    rule_id=r["check_id"].rsplit(".", 1)[-1],
                    path=r["path"],
                    line=r["start"]["line"],
                    end_line=r["end"]["line"],
                    message=extra.get("message", ""),
                    severity=_SEVERITY.get(extra.get("severity", "WARNING"), Severity.MEDIUM),
                    confidence=Severity(str(meta.get("confidence", "medium")).lower()),
                    fields={"message": extra.get("message", "")},
                )
            )
        return result


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"

"""Semgrep with the bundled rules only: one run per change, all files named explicitly.

It runs the OCaml CLI (``semgrep scan --experimental``), which reports what the Python wrapper
reports at about a seventh of the start-up cost (see bench/ and tests/test_rules.py).
Files are named explicitly because Semgrep silently skips ``tests/`` and large files when given a
directory.

Semgrep's JSON carries the rendered message but not the metavariable bindings, so the values the
catalog texts quote (``{arg}``, ``{url}``...) are read back out of the message by matching it
against the rule's own message template.

Blind spots are reported, never mistaken for a clean scan: a named file Semgrep did not scan, any
error it reports (partial parsing included), and a Python file that is not valid Python 3.
Semgrep's Python parser recovers from syntax errors and reads Python 2 (``print x``,
``except E, e:``) without saying so; it still covers such a file, which Bandit cannot parse at
all, but what sits on the lines it could not parse is unreviewed, so the summary says which file
and why.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import hashlib
import os
import re
import time
import warnings
from functools import cached_property
from pathlib import Path, PurePosixPath

from bot import metrics
from bot.analyzers.base import (
    AnalyzerError,
    AnalyzerResult,
    Traits,
    code_digest,
    run_json_tool,
    tool_identity,
    tool_path,
)
from bot.analyzers.semgrep_lsp import SemgrepServer
from bot.fixes import from_edits
from bot.model import Finding, Fix, Severity
from bot.resources import load_yaml

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
_METAVARIABLE = re.compile(r"\$([A-Z_][A-Z0-9_]*)")


def message_pattern(template: str) -> re.Pattern[str]:
    """A regex that matches ``template`` rendered, capturing each ``$VAR`` as group ``var``."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in _METAVARIABLE.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        name = match.group(1).lower()
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)


class SemgrepAnalyzer:
    name = "semgrep"
    traits = Traits(precedence=0)  # its rules' words are written for this bot: they win

    def __init__(
        self,
        rules_dir: Path,
        experimental: bool = True,
        max_target_bytes: int = 5_000_000,
        jobs: int | None = None,
        server: SemgrepServer | None = None,
        warm_max_files: int = 16,
    ) -> None:
        self.rules_dir = rules_dir
        self.experimental = experimental
        self.max_target_bytes = max_target_bytes
        self.server = server  # the warm path (bot.analyzers.semgrep_lsp); None: the CLI only
        # The server scans one file at a time; past this many files the CLI's start-up is paid
        # back and its parallel jobs win (bench/warm.py: warm ahead at 10 files, behind at 30).
        self.warm_max_files = warm_max_files
        self.jobs = jobs

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def jobs_for(self, paths: list[str]) -> int:
        """Semgrep's ``--jobs``: ``jobs`` if set, else every core but one while the change has
        Python files, because Bandit and ruff (single-threaded) run on them at the same time.

        Measured with bench/engine.py on 2 cores: with all cores Semgrep and Bandit fight over
        them; one job each cut the pipeline's overhead on 10-file changes from 0.43 to 0.33 s.
        """
        if self.jobs is not None:
            return self.jobs
        cores = os.cpu_count() or 1
        return max(1, cores - 1) if any(p.endswith(".py") for p in paths) else cores

    @cached_property
    def rules(self) -> list[dict]:
        return [
            rule
            for rule_file in self.rule_files
            for rule in (load_yaml(rule_file.read_text()) or {}).get("rules", [])
        ]

    @cached_property
    def rules_by_id(self) -> dict[str, dict]:
        return {str(rule["id"]): rule for rule in self.rules if "id" in rule}

    @cached_property
    def suffixes(self) -> tuple[str, ...]:
        """File endings of every language a bundled rule covers."""
        languages = {lang.lower() for rule in self.rules for lang in rule.get("languages", [])}
        return tuple(sorted({s for lang in languages for s in LANGUAGE_SUFFIXES.get(lang, ())}))

    @cached_property
    def message_patterns(self) -> dict[str, re.Pattern[str]]:
        return {
            rule["id"]: message_pattern(" ".join(str(rule["message"]).split()))
            for rule in self.rules
            if "id" in rule and _METAVARIABLE.search(str(rule.get("message", "")))
        }

    def bound_values(self, rule_id: str, message: str) -> dict[str, str]:
        """The metavariable values quoted in ``message``, by lower-case name ({} if unrecoverable)."""
        pattern = self.message_patterns.get(rule_id)
        match = pattern.fullmatch(" ".join(message.split())) if pattern else None
        return dict(match.groupdict()) if match else {}

    @cached_property
    def rule_files(self) -> list[Path]:
        # ``X.test.yaml`` is the annotated test target of a YAML rule file ``X.yaml``, not a rule file.
        return sorted(
            p for p in self.rules_dir.glob("*.yaml") if p.is_file() and not p.name.endswith(".test.yaml")
        )

    def wants(self, path: str) -> bool:
        return PurePosixPath(path).name.endswith(self.suffixes) if self.suffixes else False

    def cache_key(self) -> str:
        """Semgrep's version, the options that change results, and the rule files as they are now."""
        rules = hashlib.sha256()
        for rule_file in self.rule_files:
            rules.update(rule_file.name.encode() + b"\0")
            try:
                rules.update(rule_file.read_bytes())
            except OSError:
                rules.update(b"<unreadable>")
            rules.update(b"\0")
        return (
            f"{_identity()} experimental={self.experimental} max_target_bytes={self.max_target_bytes} "
            f"rules={rules.hexdigest()}"
        )

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        if not self.rule_files:
            raise AnalyzerError(f"no rules in {self.rules_dir}")
        result = AnalyzerResult(self.name)
        cold, budget = paths, timeout
        if self.server is not None and len(paths) <= self.warm_max_files:
            started = time.monotonic()
            answered = await self.server.scan(
                self.rule_files, self.cache_key(), self.max_target_bytes, root, paths, timeout
            )
            contents: dict[str, bytes | None] = {}
            trusted: set[str] = set()
            for path, diagnostics in answered.items():
                findings = [self._from_diagnostic(root, path, d, contents) for d in diagnostics]
                if None in findings:
                    continue  # a fix the server's positions cannot place for certain: the CLI's
                result.findings += [f for f in findings if f is not None]
                trusted.add(path)
            cold = [p for p in paths if p not in trusted]
            timeout -= time.monotonic() - started
            metrics.SEMGREP_FILES.labels("warm").inc(len(trusted))
        if cold:
            if timeout <= 0:
                raise AnalyzerError(f"timed out after {budget:g} s")
            await self._run_cli(root, cold, timeout, result)
            metrics.SEMGREP_FILES.labels("cli").inc(len(cold))
        python = [p for p in paths if p.endswith((".py", ".pyi"))]
        for path, line in await asyncio.to_thread(not_python3_file_errors, root, python):
            result.add_file_error(path, line)
        return result

    async def _run_cli(self, root: Path, paths: list[str], timeout: float, result: AnalyzerResult) -> None:
        """``semgrep scan`` on ``paths``: its findings and errors into ``result``."""
        argv = [
            tool_path("semgrep"), "scan", "--json", "--metrics=off", "--disable-version-check",
            "--no-git-ignore", "--quiet", f"--max-target-bytes={self.max_target_bytes}",
            f"--timeout={max(1, int(timeout))}", f"--jobs={self.jobs_for(paths)}",
        ]  # fmt: skip
        if self.experimental:
            argv.append("--experimental")
        for rule_file in self.rule_files:
            argv += ["--config", str(rule_file)]
        argv += ["--", *paths]
        report, _ = await run_json_tool(argv, root, timeout, env=ENV)
        for err in report.get("errors", []):
            where = err.get("path") or (err.get("spans") or [{}])[0].get("file", "")
            line = f"semgrep: {where or 'run'}: {err.get('type', 'error')}: {_short(err.get('message', ''))}"
            if where:
                # A parse error recurs for the same bytes; a timeout or memory error may not.
                result.add_file_error(os.path.normpath(where), line, cacheable=_about_the_bytes(err))
            else:
                result.errors.append(line)
        scanned_list = (report.get("paths") or {}).get("scanned")
        if scanned_list is not None:
            scanned = set(scanned_list)
            for path in paths:
                if path not in scanned and os.path.normpath(path) not in scanned:
                    result.add_file_error(
                        path,
                        f"semgrep did not scan {path} (skipped); its rules did not run on it",
                        cacheable=False,
                    )
        contents: dict[str, bytes | None] = {}
        for r in report.get("results", []):
            extra = r.get("extra", {})
            result.findings.append(
                self._finding(
                    r["check_id"], r["path"], r["start"]["line"], r["end"]["line"],
                    extra.get("message", ""), extra.get("severity", "WARNING"), extra.get("metadata") or {},
                    fix=self.fix_of(r, r["check_id"].rsplit(".", 1)[-1], root, contents),
                )
            )  # fmt: skip

    @staticmethod
    def _rule_of(diagnostic: dict) -> str:
        return str(diagnostic.get("code", "")).rsplit(".", 1)[-1]

    def _from_diagnostic(
        self, root: Path, path: str, d: dict, contents: dict[str, bytes | None]
    ) -> Finding | None:
        """A finding from the warm server's diagnostic (0-based lines; the rule gives the rest);
        None when its rule has a fix that the diagnostic's range cannot place for certain."""
        rule_id = self._rule_of(d)
        rule = self.rules_by_id.get(rule_id, {})
        where = d["range"]
        fix = None
        if rule_id in self.fix_regexes:
            content = _read(root, path, contents)
            span = _ascii_span(content, where) if content is not None else None
            if span is None:
                return None
            fix = self._fix_at(rule_id, content, *span, fixed=None)
        return self._finding(
            rule_id, path, where["start"]["line"] + 1, where["end"]["line"] + 1, d.get("message", ""),
            rule.get("severity", "WARNING"), rule.get("metadata") or {}, fix=fix,
        )  # fmt: skip

    def _finding(
        self,
        check_id: str,
        path: str,
        line: int,
        end_line: int,
        message: str,
        severity: str,
        meta: dict,
        fix: Fix | None = None,
    ) -> Finding:
        rule_id = check_id.rsplit(".", 1)[-1]
        return Finding(
            tool=self.name,
            rule_id=rule_id,
            path=path,
            line=line,
            end_line=end_line,
            message=message,
            severity=_SEVERITY.get(str(severity).upper(), Severity.MEDIUM),
            confidence=Severity(str(meta.get("confidence", "medium")).lower()),
            fields={"message": message, **self.bound_values(rule_id, message)},
            fix=fix,
        )

    @cached_property
    def fix_regexes(self) -> dict[str, dict]:
        """The ``fix-regex`` of each bundled rule that has one (the only fixes the rules carry),
        with the rule's ``metadata.fix-description``."""
        return {
            rule["id"]: {
                **rule["fix-regex"],
                "description": (rule.get("metadata") or {}).get("fix-description"),
            }
            for rule in self.rules
            if "id" in rule and isinstance(rule.get("fix-regex"), dict)
        }

    def fix_of(self, result: dict, rule_id: str, root: Path, contents: dict[str, bytes | None]) -> Fix | None:
        """The rule's fix of one result: Semgrep's ``extra.fix`` (the matched text, fixed) when it
        is there, else the rule's ``fix-regex`` applied to the matched text here, so a way of running
        Semgrep that leaves ``extra.fix`` out loses no fix. ``offset`` counts bytes of the file."""
        if rule_id not in self.fix_regexes:
            return None  # a ``fix:`` template needs the bindings to recompute: the rules use fix-regex only
        content = _read(root, result["path"], contents)
        if content is None:
            return None
        try:
            start, end = int(result["start"]["offset"]), int(result["end"]["offset"])
        except (KeyError, TypeError, ValueError):
            return None
        fixed = result.get("extra", {}).get("fix")
        return self._fix_at(rule_id, content, start, end, fixed=fixed if isinstance(fixed, str) else None)

    def _fix_at(self, rule_id: str, content: bytes, start: int, end: int, fixed: str | None) -> Fix | None:
        """The rule's fix of the match at bytes ``start:end``: ``fixed`` (Semgrep's own) if given,
        else the rule's ``fix-regex`` applied to the matched text."""
        rule_fix = self.fix_regexes[rule_id]
        if not 0 <= start <= end <= len(content):
            return None
        try:
            text, matched = content.decode("utf-8"), content[start:end].decode("utf-8")
            begin = len(content[:start].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if fixed is None:
            fixed = apply_fix_regex(rule_fix, matched)
        if fixed is None or fixed == matched:
            return None
        description = rule_fix.get("description") or f"the fix of {rule_id}"
        return from_edits(text, [(begin, begin + len(matched), fixed)], description)


def _read(root: Path, path: str, contents: dict[str, bytes | None]) -> bytes | None:
    """A scanned file's bytes, read once per run (None: unreadable)."""
    if path not in contents:
        try:
            contents[path] = (root / path).read_bytes()
        except OSError:
            contents[path] = None
    return contents[path]


def _ascii_span(content: bytes, where: dict) -> tuple[int, int] | None:
    """The byte offsets of an LSP range, or None unless certain. The protocol counts characters
    in UTF-16 units and ``semgrep lsp`` counts bytes; up to a position on an ASCII prefix of its
    line every count agrees, so only such positions are used (others go to the CLI)."""
    try:
        positions = [(int(where[e]["line"]), int(where[e]["character"])) for e in ("start", "end")]
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= positions[0][0] <= positions[1][0]:
        return None
    lines = content.split(b"\n", positions[1][0] + 1)  # no further than the range's last line
    offsets = []
    for line, char in positions:
        if line >= len(lines) or not 0 <= char <= len(lines[line]) or not lines[line][:char].isascii():
            return None
        offsets.append(sum(map(len, lines[:line])) + line + char)  # + line: the newlines
    return offsets[0], offsets[1]


def apply_fix_regex(fix_regex: dict, matched: str) -> str | None:
    """Semgrep's ``fix-regex`` (``regex``, ``replacement``, optional ``count``) on the matched
    text, as Semgrep applies it (Python ``re`` syntax and ``\\1`` groups); None if unusable."""
    try:
        pattern = re.compile(str(fix_regex["regex"]))
        return pattern.sub(
            str(fix_regex.get("replacement", "")), matched, count=int(fix_regex.get("count", 0))
        )
    except (KeyError, TypeError, ValueError, re.error):
        return None


_PARSE_ERROR_TYPES = ("syntax", "parsing", "lexical", "parse")


def _about_the_bytes(err: dict) -> bool:
    """Whether a Semgrep error follows from the file's content alone (a parse error)."""
    kind = err.get("type")
    name = kind[0] if isinstance(kind, list) and kind else kind
    return isinstance(name, str) and any(word in name.lower() for word in _PARSE_ERROR_TYPES)


@functools.cache
def _identity() -> str:
    return f"{tool_identity('semgrep', 'semgrep')} {code_digest('bot.analyzers.semgrep', 'bot.fixes')}"


def not_python3_errors(root: Path, paths: list[str]) -> list[str]:
    """One line per file that does not parse as Python 3, naming where and why."""
    return [line for _, line in not_python3_file_errors(root, paths)]


def not_python3_file_errors(root: Path, paths: list[str]) -> list[tuple[str, str]]:
    """(path, line) for each file that does not parse as Python 3, naming where and why."""
    errors = []
    for path in paths:
        try:
            source = (root / path).read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences and the like
                compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except OSError:
            continue
        except (SyntaxError, ValueError) as exc:
            where = f"line {exc.lineno}: " if getattr(exc, "lineno", None) else ""
            reason = getattr(exc, "msg", None) or str(exc)
            errors.append(
                (
                    path,
                    f"semgrep: {path} is not valid Python 3 ({where}{_short(reason, 120)}); Semgrep read it "
                    "with its error-tolerant parser (Python 2 syntax included), so code on lines it could "
                    "not parse may be unreviewed",
                ),
            )
    return errors


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"

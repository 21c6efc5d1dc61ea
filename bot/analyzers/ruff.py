"""ruff for the pyflakes checks that catch real defects in unreviewed changes.

Selected codes: unused imports/variables, undefined and redefined names, ``is`` with a literal.
A file ruff cannot parse yields one ``syntax-error`` finding at the first error; its other ruff
findings are dropped, since pyflakes on a broken parse reports bogus names. An import used only
in a ``# type:`` comment is used (pyflakes agrees; ruff does not read those comments), and on
merged Nova code that was the only kind of F401 ruff raised.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from bot.analyzers.base import AnalyzerResult, Traits, code_digest, run_json_tool, tool_identity, tool_path
from bot.fixes import from_edits, offset_at, offsets_of_rows
from bot.model import Category, Finding, Fix, Severity

SELECT = ("F401", "F811", "F821", "F823", "F841", "F632")
SYNTAX_ERROR = "syntax-error"
_NAME = re.compile(r"`([^`]+)`")
_SKIPPED = re.compile(r"Failed to lint (.+?): (.+)")
_TYPE_COMMENT = re.compile(r"#\s*type:(?!\s*ignore\b)(.*)$", re.MULTILINE)


class RuffAnalyzer:
    name = "ruff"
    traits = Traits(
        precedence=2,
        category=Category.QUALITY,
        reports_confidence=False,
        unused_name_rules=frozenset({"F401", "F841"}),  # an import, a local variable
        name_reference=lambda name: name_reference(name),
        whole_module=True,  # F401/F821 read every use and definition in the module
    )

    def __init__(self, builtins: tuple[str, ...] = ("_",), target_version: str = "py311") -> None:
        # OpenStack projects install gettext's ``_`` as a builtin.
        self.builtins = builtins
        self.target_version = target_version

    def wants(self, path: str) -> bool:
        return path.endswith((".py", ".pyi"))

    def cache_key(self) -> str:
        return f"{_identity()} {self.target_version} {sorted(SELECT)} {sorted(self.builtins)}"

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        argv = [
            tool_path("ruff"), "check", "--isolated", "--no-cache", "--exit-zero",
            "--output-format", "json", "--target-version", self.target_version,
            "--select", ",".join(SELECT), "--",
            *paths,
        ]  # fmt: skip
        if self.builtins:
            argv[3:3] = ["--config", f"builtins = {list(self.builtins)!r}"]
        items, out = await run_json_tool(argv, root, timeout, ok_codes=(0,))
        result = AnalyzerResult(self.name)
        broken: dict[str, Finding] = {}
        findings: list[Finding] = []
        texts: dict[str, str | None] = {}
        for item in items:
            path = str(Path(item["filename"]).resolve().relative_to(root.resolve()))
            code = item.get("code") or SYNTAX_ERROR
            line = item["location"]["row"]
            if code in ("invalid-syntax", SYNTAX_ERROR) or item.get("code") is None:
                if path not in broken or line < broken[path].line:
                    broken[path] = Finding(
                        "ruff", SYNTAX_ERROR, path, line, line, item["message"], Severity.HIGH,
                        Severity.HIGH, {"name": item["message"]},
                    )  # fmt: skip
                continue
            name = _NAME.search(item.get("message", ""))
            findings.append(
                Finding(
                    tool=self.name,
                    rule_id=code,
                    path=path,
                    line=line,
                    end_line=item["end_location"]["row"],
                    message=item["message"],
                    severity=Severity.MEDIUM,  # the catalog's severity for the code replaces this
                    confidence=Severity.HIGH,
                    fields={"name": name.group(1)} if name else {},
                    fix=_safe_fix(item, texts, root, path),
                )
            )
        findings = [f for f in findings if f.path not in broken and not _used_in_type_comment(f, root)]
        result.findings = findings + list(broken.values())
        for path, f in broken.items():
            result.add_file_error(path, f"{path} does not parse (line {f.line}): {f.message}")
        # ruff skips files it cannot read (e.g. not UTF-8) with only a warning on stderr.
        for match in _SKIPPED.finditer(out.stderr.decode("utf-8", errors="replace")):
            result.add_file_error(
                os.path.normpath(match.group(1)),
                f"ruff could not analyze {match.group(1)}: {match.group(2).strip()}",
            )
        return result


@cache
def _identity() -> str:
    return f"{tool_identity('ruff', 'ruff')} {code_digest('bot.analyzers.ruff', 'bot.fixes')}"


def _safe_fix(item: dict, texts: dict[str, str | None], root: Path, path: str) -> Fix | None:
    """ruff's own fix of ``item`` where ruff calls it safe (``fix.applicability``), as a Fix of
    the file's text; ruff's rows and columns are 1-based and count characters."""
    fix = item.get("fix") or {}
    if fix.get("applicability") != "safe" or not fix.get("edits"):
        return None
    if path not in texts:
        try:
            texts[path] = (root / path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            texts[path] = None
    text = texts[path]
    if text is None:
        return None
    starts = offsets_of_rows(text)
    edits = []
    for edit in fix["edits"]:
        start = offset_at(starts, edit["location"]["row"], edit["location"]["column"])
        end = offset_at(starts, edit["end_location"]["row"], edit["end_location"]["column"])
        if start is None or end is None:
            return None
        edits.append((start, end, edit.get("content") or ""))
    return from_edits(text, edits, fix.get("message") or item.get("message", ""))


def _used_in_type_comment(finding: Finding, root: Path) -> bool:
    name = finding.fields.get("name")
    if finding.rule_id != "F401" or not name:
        return False
    try:
        text = (root / finding.path).read_text("utf-8", errors="replace")
    except OSError:
        return False
    reference = name_reference(name)
    return any(reference.search(m.group(1)) for m in _TYPE_COMMENT.finditer(text))


def name_reference(name: str) -> re.Pattern[str]:
    """How code refers to a name ruff reports by its dotted path: by the first part
    (``import os.path`` -> ``os.path.join``) or the last (``from nova import utils`` ->
    ``utils.execute``), as a whole name that is not itself an attribute."""
    parts = sorted({re.escape(name.split(".", 1)[0]), re.escape(name.rsplit(".", 1)[-1])})
    return re.compile(rf"(?<![\w.])(?:{'|'.join(parts)})\b")

"""Reporter stage (platform-free): findings -> comments in a reviewer's voice, and the summary.

Texts come from the message catalog ``rules/catalog.yaml``; placeholders are filled from the
finding and from the flagged line, so each comment names the actual call, argument or import.
Platform adapters only add their own markup (GitHub's hidden fingerprint, Gerrit's footer token).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot import fixes
from bot.analyzers import traits_of
from bot.filter import Anchored
from bot.model import Category, Change, ChangedFile, Comment, Finding, Fix, Review, Severity
from bot.resources import data_path, load_yaml

VERDICT_CLEAN = "No security defects are detected in the code."
_CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
_DEF = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+(\w+)")
_NEUTRAL = {"call": "this call", "name": "this name", "arg": "this argument", "code": "this line"}


@dataclass(frozen=True)
class CatalogEntry:
    title: str
    why: str
    fix: str
    category: Category
    concern: str | None = None
    severity: Severity | None = None


class Catalog:
    """The message catalog: ``"<tool>:<rule_id>"`` -> title, why, fix, category."""

    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        raw = load_yaml((path or data_path("rules", "catalog.yaml")).read_text()) or {}
        entries = {}
        for key, value in raw.items():
            entries[key] = CatalogEntry(
                title=value["title"],
                why=value["why"],
                fix=value["fix"],
                category=Category(value.get("category", "security")),
                concern=value.get("concern"),
                severity=Severity(value["severity"]) if value.get("severity") else None,
            )
        return cls(entries)

    def entry(self, finding: Finding) -> CatalogEntry:
        found = self.entries.get(f"{finding.tool}:{finding.rule_id}")
        if found:
            return found
        # An id the catalog does not know yet (a newer Bandit, say): still a useful comment.
        return CatalogEntry(
            title=finding.fields.get("test_name") or finding.rule_id,
            why=finding.message or f"{finding.tool} reports `{finding.rule_id}` on this line.",
            fix=f"See the {finding.tool} documentation for `{finding.rule_id}`.",
            category=traits_of(finding.tool).category,
        )


@cache
def default_catalog() -> Catalog:
    return Catalog.load()


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return _NEUTRAL.get(key, "this")


def _fill(template: str, fields: dict[str, str]) -> str:
    try:
        return template.format_map(_Fields(fields))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template  # a malformed template is shown as written rather than lost


def flagged_code(finding: Finding, lines: list[str]) -> str:
    if 1 <= finding.line <= len(lines):
        return lines[finding.line - 1].strip()
    return ""


def enclosing_scope(lines: list[str], line: int) -> str:
    """Name of the nearest enclosing ``def``/``class`` (by indentation), or ``""`` at module level."""
    if not 1 <= line <= len(lines):
        return ""
    target = lines[line - 1]
    indent = len(target) - len(target.lstrip())
    for number in range(line - 1, 0, -1):
        match = _DEF.match(lines[number - 1])
        if match and len(match.group(1)) < indent:
            return match.group(2)
    return ""


def fingerprint(finding: Finding, lines: list[str], occurrence: int = 0) -> str:
    """Stable across line moves: tool, rule, path, normalised code, enclosing scope, occurrence."""
    code = " ".join(flagged_code(finding, lines).split())
    key = "\x1f".join(
        [
            finding.tool,
            finding.rule_id,
            finding.path,
            code,
            enclosing_scope(lines, finding.line),
            str(occurrence),
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def footer(finding: Finding, also: list[str]) -> str:
    parts = [f"patchwarden · {finding.tool} {finding.rule_id}", f"severity {finding.severity}"]
    if traits_of(finding.tool).reports_confidence:
        parts.append(f"confidence {finding.confidence}")
    if also:
        parts.append("also reported as " + ", ".join(also))
    return " · ".join(parts)


def comment_body(entry: CatalogEntry, finding: Finding, lines: list[str], also: list[str]) -> str:
    code = flagged_code(finding, lines)
    fields = {"code": code, "path": finding.path, **finding.fields}
    if "call" not in fields:
        call = _CALL.search(code)
        if call:
            fields["call"] = call.group(1)
    why, fix = _fill(entry.why, fields), _fill(entry.fix, fields)
    return f"**{_fill(entry.title, fields)}**\n\n{why}\n\n**Fix:** {fix}\n\n_{footer(finding, also)}_"


def build_comments(anchored: list[Anchored], change: Change, catalog: Catalog) -> list[Comment]:
    """Collapse what several tools (or one tool, several times) say of one line, then render."""
    groups: dict[tuple[str, int, str], list[Anchored]] = {}
    for item in sorted(anchored, key=lambda a: (a.finding.path, a.line, a.finding.line)):
        entry = catalog.entry(item.finding)
        key = (item.finding.path, item.line, entry.concern or f"{item.finding.tool}:{item.finding.rule_id}")
        groups.setdefault(key, []).append(item)
    lines_cache: dict[str, list[str]] = {}
    occurrences: dict[tuple[str, ...], int] = {}
    comments = []
    for (path, _line, _concern), items in groups.items():
        items.sort(key=lambda a: (traits_of(a.finding.tool).precedence, -a.finding.severity.rank))
        lead = items[0]
        finding = lead.finding
        if path not in lines_cache:
            file = change.file(path)
            lines_cache[path] = file.text().splitlines() if file else []
        lines = lines_cache[path]
        same = [
            i.finding for i in items if (i.finding.tool, i.finding.rule_id) == (finding.tool, finding.rule_id)
        ]
        if len(same) > 1 and all("name" in f.fields for f in same):
            names = list(dict.fromkeys(f.fields["name"] for f in same))
            finding.fields["name"] = "`, `".join(names)  # placeholders sit inside backticks
        also = list(
            dict.fromkeys(f"{i.finding.tool} {i.finding.rule_id}" for i in items[1:] if i.finding not in same)
        )
        # The most severe report of the line decides the severity shown.
        worst = max((i.finding.severity for i in items), key=lambda s: s.rank)
        finding.severity = worst
        entry = catalog.entry(finding)
        code_key = (finding.tool, finding.rule_id, path, " ".join(flagged_code(finding, lines).split()),
                    enclosing_scope(lines, finding.line))  # fmt: skip
        occurrence = occurrences.get(code_key, 0)
        occurrences[code_key] = occurrence + 1
        file = change.file(path)
        comments.append(
            Comment(
                finding=finding,
                line=lead.line,
                end_line=lead.end_line,
                in_hunk=lead.in_hunk,
                category=entry.category,
                title=_fill(entry.title, finding.fields),
                body=comment_body(entry, finding, lines, also),
                fingerprint=fingerprint(finding, lines, occurrence),
                also_reported_by=also,
                fix=offered_fix(items, file, lead.line, lead.end_line),
            )
        )
    return comments


def apply_catalog_severity(finding: Finding, catalog: Catalog) -> Finding:
    entry = catalog.entry(finding)
    if entry.severity is not None:
        finding.severity = entry.severity
    return finding


def priority(comment: Comment) -> tuple:
    """Which comments make the inline cap: security first, then severity, then position."""
    return (comment.category is not Category.SECURITY, -comment.severity.rank, comment.path, comment.line)


def verdict(review_security_count: int) -> str:
    if review_security_count == 0:
        return VERDICT_CLEAN
    noun = "defect is" if review_security_count == 1 else "defects are"
    return f"{review_security_count} security {noun} detected in the lines this change touches."


def render_summary(
    inline: list[Comment], overflow: list[Comment], errors: list[str], reviewed_files: int
) -> str:
    comments = inline + overflow
    security = [c for c in comments if c.category is Category.SECURITY]
    other = [c for c in comments if c.category is not Category.SECURITY]
    out = [verdict(len(security))]
    if errors:
        out += ["", "**This review is incomplete** — the verdict covers only what could be analyzed:"]
        out += [f"- {e}" for e in errors]
    number = 0
    overflow_ids = {id(c) for c in overflow}
    for heading, group in (("Security defects", security), ("Other findings", other)):
        if not group:
            continue
        out += ["", f"**{heading}**", ""]
        for c in sorted(group, key=lambda c: (c.path, c.line)):
            number += 1
            note = " (not posted inline: comment cap reached)" if id(c) in overflow_ids else ""
            out.append(f"{number}. **{c.title}** — {c.path}:{c.line}{note}")
    if not comments and not errors:
        out += [
            "",
            f"Reviewed {reviewed_files} changed file{'s' if reviewed_files != 1 else ''}; nothing to report.",
        ]
    return "\n".join(out)


def make_review(comments: list[Comment], errors: list[str], cap: int, reviewed_files: int) -> Review:
    ranked = sorted(comments, key=priority)
    inline = sorted(ranked[:cap], key=lambda c: (c.path, c.line))
    overflow = sorted(ranked[cap:], key=lambda c: (c.path, c.line))
    summary = render_summary(inline, overflow, errors, reviewed_files)
    return Review(summary, inline, overflow, errors, reviewed_files=reviewed_files)


def offered_fix(items: list[Anchored], file: ChangedFile | None, line: int, end_line: int) -> Fix | None:
    """The one fix the reports collapsed into a comment agree on, if it passes ``fixes.offer``;
    reports with different fixes get none (applying one would not settle the others)."""
    candidates = {i.finding.fix for i in items if i.finding.fix is not None}
    if file is None or len(candidates) != 1:
        return None
    return fixes.offer(candidates.pop(), file, line, end_line)


def fenced(text: str, info: str = "") -> str:
    """``text`` in a Markdown code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if not text or text.endswith("\n") else text + "\n"
    return f"{fence}{info}\n{body}{fence}"


def suggestion_block(fix: Fix) -> str:
    """GitHub's suggested change: the block replaces the lines its comment covers
    (``start_line``..``line``), which ``fixes.offer`` made the fix's own lines; empty deletes them."""
    return fenced(fix.replacement, "suggestion")


def suggestion_text(fix: Fix) -> str:
    """The fix as comment text, where a platform takes no structured fix (Gerrit before 3.10, or
    one that refuses ``fix_suggestions``): a suggestion block for the fix's lines, which the
    comment then covers (an empty block deletes them)."""
    lines = (
        f"line {fix.start_line}"
        if fix.start_line == fix.end_line
        else f"lines {fix.start_line}-{fix.end_line}"
    )
    return f"**Suggested fix** ({fix.description}; replaces {lines}):\n\n{suggestion_block(fix)}"

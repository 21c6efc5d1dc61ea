"""Output formats of ``patchwarden check``: text, json, sarif (2.1.0), diff (the offered fixes
as a patch); and the fixed contents ``--fix`` writes."""

from __future__ import annotations

import json

from bot import fixes
from bot.model import Change, Comment, Fix, Review, Severity
from bot.render import suggestion_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def comment_dict(c: Comment) -> dict:
    return {
        "path": c.path,
        "line": c.line,
        "end_line": c.end_line,
        "tool": c.finding.tool,
        "rule_id": c.finding.rule_id,
        "severity": str(c.severity),
        "category": str(c.category),
        "fingerprint": c.fingerprint,
        "inline": True,
        "body": c.body,
        "fix": fix_dict(c.fix) if c.fix else None,
    }


def fix_dict(fix: Fix) -> dict:
    return {
        "description": fix.description,
        "start_line": fix.start_line,
        "end_line": fix.end_line,
        "replacement": fix.replacement,
    }


def fixed_files(review: Review, change: Change) -> dict[str, tuple[str, str]]:
    """{path: (head text, text with the review's fixes applied)} for each file with a fix; of
    two fixes that overlap, the first (by line) is applied and the other left for a next run."""
    by_path: dict[str, list[Fix]] = {}
    for c in review.all_comments:
        if c.fix is not None:
            by_path.setdefault(c.path, []).append(c.fix)
    out = {}
    for path, found in sorted(by_path.items()):
        file = change.file(path)
        if file is None or file.content is None:
            continue
        chosen: list[Fix] = []
        for fix in sorted(found, key=lambda f: (f.start_line, f.end_line)):
            if not chosen or fix.start_line > chosen[-1].end_line:
                chosen.append(fix)
        text = file.content.decode("utf-8")  # fixes.offer only offers fixes on UTF-8 files
        out[path] = (text, fixes.apply(text, chosen))
    return out


def to_diff(review: Review, change: Change) -> str:
    """The offered fixes as one patch (``git apply`` / ``patch -p1``); empty when there are none."""
    return "".join(fixes.unified_diff(p, old, new) for p, (old, new) in fixed_files(review, change).items())


def to_json(review: Review, change: Change | None = None) -> str:
    comments = [comment_dict(c) for c in review.comments]
    comments += [{**comment_dict(c), "inline": False} for c in review.overflow]
    return json.dumps({"summary": review.summary, "comments": comments, "errors": review.errors}, indent=2)


def to_text(review: Review, change: Change | None = None) -> str:
    out = [review.summary]
    for c in review.comments:
        out += ["", "-" * 72, f"{c.path}:{c.line}", "", c.body]
        if c.fix:
            out += ["", suggestion_text(c.fix)]
    return "\n".join(out) + "\n"


def sarif_fix(path: str, fix: Fix) -> dict:
    """SARIF's ``fix`` (3.55): whole lines replaced; a region ending at column 1 of the next line
    takes the last line's newline with it, so an empty replacement deletes the lines (columns
    are 1-based UTF-16 code units, SARIF's default)."""
    end_line, end_character = fixes.region_end(fix)
    end = {"endLine": end_line, "endColumn": end_character + 1}
    return {
        "description": {"text": fix.description},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": path},
                "replacements": [
                    {
                        "deletedRegion": {"startLine": fix.start_line, "startColumn": 1, **end},
                        "insertedContent": {"text": fix.replacement},
                    }
                ],
            }
        ],
    }


def to_sarif(review: Review, change: Change | None = None) -> str:
    rules: dict[str, dict] = {}
    results = []
    for c in review.all_comments:
        rule_id = f"{c.finding.tool}/{c.finding.rule_id}"
        rules.setdefault(
            rule_id,
            {"id": rule_id, "name": c.finding.rule_id, "shortDescription": {"text": c.title}},
        )
        region = {"startLine": c.line, "endLine": max(c.line, c.end_line)}
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": list(rules).index(rule_id),
                "level": _SARIF_LEVEL[c.severity],
                "message": {"text": c.body},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": c.path}, "region": region}}],
                "partialFingerprints": {"patchwarden/v1": c.fingerprint},
                "properties": {"category": str(c.category), "severity": str(c.severity)},
            }
        )
        if c.fix is not None:
            results[-1]["fixes"] = [sarif_fix(c.path, c.fix)]
    run = {
        "tool": {
            "driver": {
                "name": "patchwarden",
                "informationUri": "https://github.com/patchwarden/patchwarden",
                "rules": list(rules.values()),
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not review.errors,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": e}} for e in review.errors
                ],
            }
        ],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


FORMATS = {"text": to_text, "json": to_json, "sarif": to_sarif, "diff": to_diff}

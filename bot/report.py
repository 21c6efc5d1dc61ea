"""Output formats of ``patchwarden check``: text, json, sarif (2.1.0)."""

from __future__ import annotations

import json

from bot.model import Comment, Review, Severity

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
    }


def to_json(review: Review) -> str:
    comments = [comment_dict(c) for c in review.comments]
    comments += [{**comment_dict(c), "inline": False} for c in review.overflow]
    return json.dumps({"summary": review.summary, "comments": comments, "errors": review.errors}, indent=2)


def to_text(review: Review) -> str:
    out = [review.summary]
    for c in review.comments:
        out += ["", "-" * 72, f"{c.path}:{c.line}", "", c.body]
    return "\n".join(out) + "\n"


def to_sarif(review: Review) -> str:
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


FORMATS = {"text": to_text, "json": to_json, "sarif": to_sarif}

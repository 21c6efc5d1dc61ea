"""Suppression comments, honoured the same way whichever analyzer produced the finding.

- ``# nosec`` silences Bandit and Semgrep on the line; ``# nosec B602, B607`` (or a rule id /
  Bandit test name) only those.
- ``# nosemgrep`` silences Semgrep; ``# nosemgrep: rule-id`` only that rule.
- ``# noqa`` silences ruff; ``# noqa: F401`` only that code.
A marker on any line of a multi-line finding counts (Bandit reports whole statements).
"""

from __future__ import annotations

import re

from bot.model import Finding

_MARKER = re.compile(r"(?:#|//|--)\s*(nosec|nosemgrep|noqa)\b(.*)", re.IGNORECASE)
_ID = re.compile(r"^(?:B\d{3}|[A-Z]+\d+|[a-z0-9]+(?:[-_.][a-z0-9]+)+)$")
_TOOLS = {"nosec": ("bandit", "semgrep"), "nosemgrep": ("semgrep",), "noqa": ("ruff",)}


def _markers(line: str) -> list[tuple[str, set[str]]]:
    found = []
    for match in _MARKER.finditer(line):
        kind, rest = match.group(1).lower(), match.group(2)
        rest = rest.lstrip(" :")
        ids = set()
        for token in re.split(r"[\s,]+", rest):
            token = token.strip()
            if not _ID.match(token):
                break  # free text after the ids ("# nosec B602 - reviewed") ends the list
            ids.add(token)
        found.append((kind, ids))
    return found


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    """Whether a suppression comment on the finding's lines silences it."""
    names = {finding.rule_id, finding.fields.get("test_name", "")} - {""}
    for number in finding.lines:
        if not 1 <= number <= len(lines):
            continue
        for kind, ids in _markers(lines[number - 1]):
            if finding.tool not in _TOOLS[kind]:
                continue
            if not ids or names & ids or any(i.rsplit(".", 1)[-1] in names for i in ids):
                return True
    return False

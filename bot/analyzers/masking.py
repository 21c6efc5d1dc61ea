"""A change that takes the masking away from a log call: the one shape a rule cannot see.

Semgrep and Bandit read only the head version, so ``LOG.debug('%s', strutils.mask_password(x))``
turned into ``LOG.debug('%s', x)`` looks like any other log line when ``x`` has a neutral name
(``msg``, ``out``, ``props``). The diff knows better: the removed side masked ``x``, the added side
logs ``x`` unmasked. Reverting a masking fix produces exactly this.
"""

from __future__ import annotations

import re

from bot.model import ChangedFile, Finding, Severity

TOOL = "patchwarden"
RULE_ID = "masking-removed"
_MASKED = re.compile(r"mask(?:_dict)?_password\(\s*((?:[^()]|\([^()]*\))+?)\s*[,)]")
_LOGGING = re.compile(r"(?:\b(?:LOG|_LOG|LOGGER|log|logger|_logger|logging)\.\w+\(|\braise\s)")
_WINDOW = 4  # a log call's arguments may start a few lines below the call


def removed_masking(files: list[ChangedFile]) -> list[Finding]:
    findings = []
    for f in files:
        if not f.removed_text or not f.added_lines or f.content is None:
            continue
        masked = {m.group(1).strip() for line in f.removed_text for m in _MASKED.finditer(line)}
        if not masked:
            continue
        lines = f.text().splitlines()
        for number in sorted(f.added_lines):
            if not 1 <= number <= len(lines):
                continue
            code = lines[number - 1].split("#", 1)[0]
            if "mask" in code:
                continue
            window = "\n".join(lines[max(0, number - 1 - _WINDOW) : number])
            if not _LOGGING.search(window):
                continue
            for value in sorted(masked):
                if re.search(rf"(?<![\w.]){re.escape(value)}(?![\w\[(])", code):
                    findings.append(
                        Finding(
                            tool=TOOL,
                            rule_id=RULE_ID,
                            path=f.path,
                            line=number,
                            end_line=number,
                            message=f"`{value}` was masked here before this change and is now logged as is.",
                            severity=Severity.MEDIUM,
                            confidence=Severity.HIGH,
                            fields={"arg": value},
                        )
                    )
                    break
    return findings

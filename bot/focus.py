"""Focus a large Python file on the lines a change touched, for the analyzers that read code
one function at a time.

Semgrep and Bandit cost time in proportion to the whole file (Semgrep about 20 s on Nova's
1.5 MB ``test_driver.py`` with the bundled rules), while a review keeps only the findings on the
lines the change touched. Their checks look no further than the enclosing function and the
module's top-level statements, so a copy in which every function and class that no touched line
falls in is blanked out gives them the same findings on the touched lines, at the cost of the
touched functions only. Line numbers are unchanged: a blanked definition becomes one ``pass``
line at its indentation followed by empty lines.

What is kept, always: every statement that is not a ``def`` or ``class`` (imports, constants,
``if`` blocks, decorators' targets...), every definition a touched line falls in (with its
decorators), and inside a kept class the same rule again for its methods and nested classes.
ruff is never given a focused copy: unused and undefined names need the whole module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def focus(source: bytes, keep: Iterable[range]) -> bytes | None:
    """``source`` with the definitions outside ``keep`` (1-based line ranges) blanked, or None
    when there is nothing to gain or the file does not parse (the analyzers get it whole)."""
    kept = sorted((r.start, r.stop - 1) for r in keep if len(r))
    if not kept:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    lines = source.splitlines(keepends=True)
    blanked = False
    for start, end, indent in _blank_spans(tree.body, kept):
        lines[start - 1] = b" " * indent + b"pass" + _ending(lines[start - 1])
        for n in range(start, end):
            lines[n] = _ending(lines[n])
        blanked = True
    if not blanked:
        return None
    focused = b"".join(lines)
    try:
        ast.parse(focused)
    except (SyntaxError, ValueError):  # never expected; if it happens, review the whole file
        return None
    return focused


def _blank_spans(body: list[ast.stmt], kept: list[tuple[int, int]]) -> Iterable[tuple[int, int, int]]:
    """(first line, last line, indentation) of each definition in ``body`` to blank."""
    for node in body:
        if not isinstance(node, _DEFINITIONS):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        if not any(a <= end and start <= b for a, b in kept):
            yield start, end, node.col_offset
        elif isinstance(node, ast.ClassDef):
            yield from _blank_spans(node.body, kept)


def _ending(line: bytes) -> bytes:
    for ending in (b"\r\n", b"\n", b"\r"):
        if line.endswith(ending):
            return ending
    return b""

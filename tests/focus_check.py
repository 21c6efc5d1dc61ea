"""Whether focusing large files (bot.focus) changes what Semgrep and Bandit find on the lines a
change touched: the analyzers run on the whole files and on the focused copies, and the findings
on the hunks are compared. Used by tests/test_focus.py and bench/focus.py."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.analyzers import traits_of
from bot.config import EngineSettings
from bot.model import ChangedFile, FilterMode, Finding, Hunk
from bot.pipeline import Engine
from bot.workspace import Workspace

Key = tuple[str, str, str, int, int, str]


@dataclass
class Comparison:
    whole: set[Key] = field(default_factory=set)  # findings on the hunks, whole files
    focused: set[Key] = field(default_factory=set)  # the same, focused copies
    seconds_whole: dict[str, float] = field(default_factory=dict)
    seconds_focused: dict[str, float] = field(default_factory=dict)
    bytes_whole: int = 0
    bytes_focused: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def missed(self) -> set[Key]:
        return self.whole - self.focused

    @property
    def extra(self) -> set[Key]:
        return self.focused - self.whole


def on_hunks(findings: list[Finding], files: list[ChangedFile]) -> set[Key]:
    hunks = {f.path: f.hunks for f in files}
    return {
        (f.tool, f.rule_id, f.path, f.line, f.end_line, f.message)
        for f in findings
        if any(any(n in h for h in hunks.get(f.path, ())) for n in f.lines)
    }


async def compare(engine: Engine, files: list[ChangedFile], timeout: float = 600.0) -> Comparison:
    """Each analyzer that accepts focused copies, on ``files`` whole and then focused by the
    engine's own ``focused_copies`` (what the pipeline gives it)."""
    focused = engine.focused_copies(files, FilterMode.DIFF_CONTEXT)
    out = Comparison(
        bytes_whole=sum(len(f.content or b"") for f in files),
        bytes_focused=sum(len(f.content or b"") for f in focused),
    )
    for analyzer in engine.analyzers:
        if traits_of(analyzer.name).whole_module:
            continue
        for copies, found, seconds in (
            (files, out.whole, out.seconds_whole),
            (focused, out.focused, out.seconds_focused),
        ):
            with Workspace(copies) as ws:
                paths = [p for p in ws.written if analyzer.wants(p)]
                started = time.perf_counter()
                result = await analyzer.run(ws.root, paths, timeout)
                seconds[analyzer.name] = time.perf_counter() - started
            found |= on_hunks(result.findings, files)
            out.errors += result.run_errors()
    return out


def windows_around(findings: list[Finding], file: ChangedFile, context: int = 3) -> ChangedFile:
    """``file`` as if a change had touched each finding's first line (hunks of ±context lines)."""
    lines = sorted({f.line for f in findings if f.path == file.path})
    hunks = tuple(Hunk(max(1, n - context), n + context) for n in lines)
    return ChangedFile(file.path, file.status, file.content, added_lines=frozenset(lines), hunks=hunks)


def engine(focus_min_bytes: int = EngineSettings().focus_min_bytes) -> Engine:
    return Engine.from_settings(EngineSettings(focus_min_bytes=focus_min_bytes))

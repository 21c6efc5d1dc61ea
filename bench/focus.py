"""Large files focused on the changed lines (bot.focus): same findings, and how much faster.

Run by hand from the repository root (not a test)::

    PYTHONPATH=. .venv/bin/python bench/focus.py OLD_TREE NEW_TREE [--min-bytes 64000] [--limit N]

e.g. two Nova releases unpacked from their sdists (``pip download --no-deps --no-binary :all:
nova==33.0.0`` and ``nova==34.0.0``). For every ``.py`` file of at least ``--min-bytes`` that
differs between the trees, two changes are checked:

- ``release diff``: the real hunks between the two releases (``bot.diff.diff_contents``);
- ``finding windows``: a hunk of ±3 lines around every finding Semgrep and Bandit report on the
  whole new file, i.e. changes made exactly where the analyzers have something to say.

For each, Semgrep and Bandit run on the whole files and on the focused copies the pipeline would
give them (``Engine.focused_copies``), and the findings on the hunks are compared. Prints a table
and every mismatch; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.analyzers import traits_of
from bot.diff import diff_contents
from bot.model import ChangedFile, FileStatus
from bot.workspace import Workspace
from tests.focus_check import Comparison, compare, engine, windows_around


def changed_files(old_tree: Path, new_tree: Path, min_bytes: int, limit: int | None) -> list[ChangedFile]:
    files = []
    for new in sorted(new_tree.rglob("*.py")):
        rel = new.relative_to(new_tree).as_posix()
        old = old_tree / rel
        content = new.read_bytes()
        if len(content) < min_bytes or not old.is_file() or old.read_bytes() == content:
            continue
        diff = diff_contents(rel, old.read_bytes(), content)
        files.append(
            ChangedFile(rel, FileStatus.MODIFIED, content, added_lines=diff.added_lines, hunks=diff.hunks)
        )
    return files[:limit] if limit else files


def row(name: str, files: list[ChangedFile], c: Comparison) -> str:
    whole = sum(c.seconds_whole.values())
    focused = sum(c.seconds_focused.values())
    return (
        f"| {name} | {len(files)} | {sum(len(f.hunks) for f in files)} | {c.bytes_whole / 1e6:.1f} -> "
        f"{c.bytes_focused / 1e6:.1f} | {len(c.whole)} | {len(c.missed)} | {len(c.extra)} | "
        f"{c.seconds_whole.get('semgrep', 0):.1f} -> {c.seconds_focused.get('semgrep', 0):.1f} | "
        f"{c.seconds_whole.get('bandit', 0):.1f} -> {c.seconds_focused.get('bandit', 0):.1f} | "
        f"{whole / max(focused, 1e-9):.1f}x |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old_tree", type=Path)
    parser.add_argument("new_tree", type=Path)
    parser.add_argument("--min-bytes", type=int, default=None, help="default: engine.focus_min_bytes")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    args = parser.parse_args()
    e = engine() if args.min_bytes is None else engine(args.min_bytes)
    files = changed_files(args.old_tree, args.new_tree, e.settings.focus_min_bytes, args.limit)
    print(f"{len(files)} changed .py files of at least {e.settings.focus_min_bytes:,} bytes", file=sys.stderr)
    started = time.perf_counter()
    release = await compare(e, files)
    whole_findings = []
    with Workspace(files) as ws:
        for analyzer in e.analyzers:
            if not traits_of(analyzer.name).whole_module:
                paths = [p for p in ws.written if analyzer.wants(p)]
                whole_findings += (await analyzer.run(ws.root, paths, 600.0)).findings
    windows = [w for w in (windows_around(whole_findings, f) for f in files) if w.hunks]
    around = await compare(e, windows)
    print(f"\n{time.perf_counter() - started:.0f} s in all\n")
    print(
        "| change | files | hunks | MB whole -> focused | findings on the hunks (whole) | missed | extra "
        "| semgrep s | bandit s | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(row("release diff", files, release))
    print(row("finding windows", windows, around))
    bad = 0
    for name, c in (("release diff", release), ("finding windows", around)):
        for key in sorted(c.missed):
            print(f"MISSED ({name}): {key}")
        for key in sorted(c.extra):
            print(f"EXTRA ({name}): {key}")
        bad += len(c.missed) + len(c.extra)
        for line in c.errors:
            print(f"error ({name}): {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

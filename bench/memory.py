"""Memory of the warm analyzers after many reviews of distinct files (issue 11: flat, and under
500 MB together).

Run by hand from the repository root (not a test)::

    PYTHONPATH=. .venv/bin/python bench/memory.py TREE [--reviews 1000]

TREE is a source tree (e.g. Nova unpacked from its sdist). Each review is one ``.py`` file of it
at a path of its own, as a new file, through the service's engine (``warm=True``: one
``semgrep lsp``, Bandit's worker processes; no result cache). Every 100 reviews it prints the
resident set of the Semgrep server and of each Bandit worker (``/proc/<pid>/statm``), and how many
of each have been started (they are retired by file count and memory ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.analyzers.base import rss_bytes
from bot.config import EngineSettings, RepoConfig
from bot.model import Change, ChangedFile, FileStatus
from bot.pipeline import Engine


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f}"


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", type=Path)
    ap.add_argument("--reviews", type=int, default=1000)
    args = ap.parse_args()
    files = sorted(p for p in args.tree.rglob("*.py") if 0 < p.stat().st_size < 200_000)
    engine = Engine.from_settings(EngineSettings(), warm=True)
    semgrep = next(a for a in engine.analyzers if a.name == "semgrep")
    bandit = next(a for a in engine.analyzers if a.name == "bandit")
    config = RepoConfig()
    print("| reviews | semgrep lsp MiB | bandit workers MiB | together MiB | servers started | s |")
    print("|---|---|---|---|---|---|")
    started = time.perf_counter()
    peak = 0
    for n in range(1, args.reviews + 1):
        source = files[(n - 1) % len(files)]
        content = source.read_bytes() + f"\n# review {n}\n".encode()
        lines = frozenset(range(1, content.count(b"\n") + 2))
        path = f"r{n}/{source.relative_to(args.tree).as_posix()}"
        await engine.review(Change([ChangedFile(path, FileStatus.ADDED, content, added_lines=lines)]), config)
        server = semgrep.server._server
        lsp = rss_bytes(server.pid) if server and server.pid else 0
        workers = sum(w.rss() for w in bandit.pool.workers())
        peak = max(peak, lsp + workers)
        if n % 100 == 0 or n == 1:
            print(
                f"| {n} | {mib(lsp)} | {mib(workers)} | {mib(lsp + workers)} | {semgrep.server.started} "
                f"| {time.perf_counter() - started:.0f} |"
            )
    print(f"\npeak together: {mib(peak)} MiB")
    await engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Fast reviews: the engine on bench/service.py's typical change, cold vs warm Bandit vs the cache.

Run by hand from the repository root (not a test)::

    PYTHONPATH=. .venv/bin/python bench/cache.py [--runs 10]

The change is bench/service.py's: four Nova-like Python files, +282 lines, 7 inline findings.
Every scenario runs ``await engine.review(change, config)`` ``--runs`` times in this process
(imports and rule files warm, as in the service), interleaved round-robin so the machine's drift
hits them alike, after one unmeasured warm-up review each:

- ``cold bandit, no cache``: what the service did before issue 11 (the Bandit CLI per review);
- ``warm bandit, no cache``: Bandit in its worker process;
- ``cache miss``: warm Bandit and a result cache that has never seen these bytes (a fresh one);
- ``rescan (all cached)``: the same change again, nothing changed;
- ``new patchset, 1 of 4 files changed``: one file's bytes differ from every earlier run.

Every review's comments and errors are checked against the cold one's. Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service import CHANGE_BASE, CHANGE_HEAD
from bot.analyzers import BanditAnalyzer
from bot.cache import ResultCache
from bot.config import load_settings
from bot.diff import diff_contents
from bot.model import Change, ChangedFile, FileStatus
from bot.pipeline import Engine


def make_change(head: dict[str, bytes]) -> Change:
    files = []
    for path, new in head.items():
        old = CHANGE_BASE.get(path)
        diff = diff_contents(path, old, new)
        status = FileStatus.MODIFIED if old is not None else FileStatus.ADDED
        files.append(ChangedFile(path, status, new, added_lines=diff.added_lines, hunks=diff.hunks))
    return Change(files)


def seen(review) -> tuple:
    return ([(c.path, c.line, c.finding.rule_id, c.body) for c in review.all_comments], review.errors)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def main(runs: int) -> int:
    settings = load_settings(environ={})
    config = settings.review
    change = make_change(CHANGE_HEAD)

    cold = Engine.from_settings(settings.engine)
    cold.analyzers = [BanditAnalyzer(warm=False) if a.name == "bandit" else a for a in cold.analyzers]
    warm = Engine.from_settings(settings.engine)
    cached = Engine.from_settings(settings.engine, cache=ResultCache())
    expected = seen(await cold.review(change, config))
    await warm.review(change, config)
    await cached.review(change, config)  # warm-up; fills the cache for the rescans

    def patchset(i: int) -> Change:
        head = dict(CHANGE_HEAD)
        path = "nova/virt/image_hints.py"
        head[path] = head[path] + f"\n\n# patchset {i} {time.time_ns()}\n".encode()
        return make_change(head)

    scenarios = {
        "cold bandit, no cache (before)": lambda i: (cold, change),
        "warm bandit, no cache": lambda i: (warm, change),
        "cache miss (warm bandit)": lambda i: (
            Engine(cached.analyzers, cached.catalog, cached.settings, ResultCache()),
            change,
        ),
        "rescan (all cached)": lambda i: (cached, change),
        "new patchset, 1 of 4 files changed": lambda i: (cached, patchset(i)),
    }
    times: dict[str, list[float]] = {name: [] for name in scenarios}
    analyzers: dict[str, list[dict[str, float]]] = {name: [] for name in scenarios}
    mismatches = 0
    for i in range(runs):
        for name, make in scenarios.items():
            engine, ch = make(i)
            started = time.perf_counter()
            review = await engine.review(ch, config)
            times[name].append(time.perf_counter() - started)
            analyzers[name].append(dict(review.timings))
            if ch is change and seen(review) != expected:
                mismatches += 1
                print(f"MISMATCH in {name}, run {i}", file=sys.stderr)

    print(f"engine.review on bench/service.py's change (4 files, +282 lines), {runs} runs each, ms")
    header = f"{'scenario':<38} {'median':>8} {'p90':>8} {'max':>8}   analyzer medians (run ones only)"
    print(header)
    print("-" * len(header))
    for name in scenarios:
        t = [x * 1000 for x in times[name]]
        per = []
        for tool in ("bandit", "semgrep", "ruff"):
            vals = [a[tool] * 1000 for a in analyzers[name] if tool in a and a[tool] > 0]
            per.append(f"{tool} {statistics.median(vals):.0f}" if vals else f"{tool} -")
        print(f"{name:<38} {statistics.median(t):8.1f} {pct(t, 0.9):8.1f} {max(t):8.1f}   {', '.join(per)}")
    print(f"reviews identical to the cold one: {'all' if not mismatches else f'{mismatches} differ'}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=10)
    sys.exit(asyncio.run(main(ap.parse_args().runs)))

"""Engine benchmark: the real analyzers and the whole pipeline on real changes to OpenStack Nova.

Run by hand (not a test)::

    .venv/bin/python bench/engine.py [--runs N] [--sizes 1,3,10,30] [--changes K] [--quick]

1. Downloads two Nova releases as sdists with ``pip download`` into ``bench/.cache`` (git-ignored)
   and extracts them there.
2. Takes the ``.py`` files under ``nova/`` (tests included) that differ between the releases and
   builds K changes of each size, deterministically: file j of change i is drawn (fixed seed) from
   quartile (i + j) mod 4 of "lines added", so every size mixes one-line fixes and rewrites.
3. For every change and run, each measurement in its own forked process (fresh rusage, imports
   and rule files already loaded, as in the long-running server), in a shuffled order:
   Bandit, Semgrep (``--experimental``, what the bot runs) and ruff alone, each the cold
   subprocess the pipeline starts; the whole pipeline, ``engine.review(change, config)``; and,
   unless ``--quick``: the pipeline with Semgrep limited to one job (a probe of CPU contention),
   ``semgrep scan`` without ``--experimental``, and Bandit in-process (``BanditManager``).
4. Prints medians (p90) per size, the pipeline's overhead beyond its slowest analyzer and where
   it goes, peak RSS, and a verdict per size.

Wall times are taken inside the measuring process around the awaited call only (fork and set-up
excluded). Times "alone" exclude writing the workspace; the pipeline's include it, as they include
everything ``engine.review`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import multiprocessing
import os
import platform
import random
import resource
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (bench/engine.py): the repository is importable too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stats import median, p90
from bot.analyzers import Analyzer, AnalyzerResult, SemgrepAnalyzer
from bot.config import RepoConfig, load_settings
from bot.diff import diff_contents
from bot.model import Change, ChangedFile, FileStatus, Hunk
from bot.pipeline import Engine
from bot.workspace import Workspace

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
PACKAGE = "nova"
DEFAULT_RELEASES = ("30.0.0", "31.0.0")
ANALYZERS = ("bandit", "semgrep", "ruff")
PIPELINE, PIPELINE_ALL, SEMGREP_PY, BANDIT_INPROC = "pipeline", "pipeline-jall", "semgrep-py", "bandit-inproc"
EXTRAS = (PIPELINE_ALL, SEMGREP_PY, BANDIT_INPROC)  # skipped by --quick
TARGET_FRACTION = 0.10  # the pipeline may cost at most 10 % more than its slowest analyzer...
TARGET_SECONDS = 0.15  # ...or 0.15 s, whichever is larger
STRATA = 4
NCPU = len(os.sched_getaffinity(0))
Key = tuple[str, str, int]  # (rule id, path, line): what two runs are compared on


# --------------------------------------------------------------------------------------------
# Corpus: two releases, the files that differ, changes built from them


@dataclass(frozen=True)
class Candidate:
    """A .py file that differs between the two releases."""

    path: str
    new: bytes
    added_lines: frozenset[int]
    hunks: tuple[Hunk, ...]

    def changed_file(self) -> ChangedFile:
        return ChangedFile(
            self.path, FileStatus.MODIFIED, self.new, added_lines=self.added_lines, hunks=self.hunks
        )


@dataclass(frozen=True)
class ChangeSpec:
    size: int
    index: int
    files: tuple[Candidate, ...]

    @property
    def name(self) -> str:
        return f"{self.size}-files#{self.index + 1}"

    @property
    def kbytes(self) -> float:
        return sum(len(f.new) for f in self.files) / 1024

    @property
    def added(self) -> int:
        return sum(len(f.added_lines) for f in self.files)

    def change(self) -> Change:
        return Change(files=[f.changed_file() for f in self.files])


def fetch_release(version: str) -> Path:
    """The extracted sdist of ``nova==version`` in bench/.cache, downloaded with pip if missing."""
    root = CACHE / f"{PACKAGE}-{version}"
    if (root / PACKAGE).is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"{PACKAGE}-{version}.tar.gz"
    if not sdist.exists():
        log(f"downloading {PACKAGE}=={version} (sdist) into {CACHE}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"{PACKAGE}=={version}", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse paths outside CACHE
            tar.extractall(CACHE, filter="data")
        else:
            tar.extractall(CACHE)  # an sdist of a known project from PyPI
    if not (root / PACKAGE).is_dir():
        raise SystemExit(f"{sdist} did not contain {root.name}/{PACKAGE}/")
    return root


def differing_files(old_root: Path, new_root: Path, max_bytes: int) -> tuple[list[Candidate], list[str]]:
    """Modified .py files under nova/ (in both releases); also the names of those over ``max_bytes``."""
    candidates: list[Candidate] = []
    too_big: list[str] = []
    for new_path in sorted((new_root / PACKAGE).rglob("*.py")):
        rel = new_path.relative_to(new_root).as_posix()
        old_path = old_root / rel
        if not old_path.is_file():
            continue
        old, new = old_path.read_bytes(), new_path.read_bytes()
        if old == new:
            continue
        if len(new) > max_bytes:  # the pipeline would only list it as not reviewed
            too_big.append(f"{rel} ({len(new) / 1e6:.1f} MB)")
            continue
        diff = diff_contents(rel, old, new)
        if diff.added_lines:  # deletion-only edits leave nothing for the filter to keep
            candidates.append(Candidate(rel, new, diff.added_lines, diff.hunks))
    return candidates, too_big


def build_changes(
    candidates: list[Candidate], sizes: Sequence[int], per_size: int, seed: int
) -> list[ChangeSpec]:
    """``per_size`` changes of each size; file j of change i comes from stratum (i + j) % STRATA.

    Strata are quartiles of "lines added". Within one size a file is drawn again only once every
    file of its stratum has been; within one change never (a used-up stratum passes to the next).
    """
    ranked = sorted(candidates, key=lambda c: (len(c.added_lines), c.path))
    strata = [ranked[k * len(ranked) // STRATA : (k + 1) * len(ranked) // STRATA] for k in range(STRATA)]
    changes: list[ChangeSpec] = []
    for size in sizes:
        rng = random.Random(f"{seed}:{size}")
        pools: list[list[Candidate]] = [[] for _ in strata]

        def draw(
            k: int, chosen: set[str], rng: random.Random = rng, pools: list[list[Candidate]] = pools
        ) -> Candidate:
            for stratum in ((k + d) % STRATA for d in range(STRATA)):
                fresh = [c for c in pools[stratum] if c.path not in chosen]
                if not fresh:  # start the stratum over, without what this change already has
                    fresh = rng.sample(strata[stratum], len(strata[stratum]))
                    fresh = [c for c in fresh if c.path not in chosen]
                if fresh:
                    pick = fresh[-1]
                    pools[stratum] = [c for c in fresh if c is not pick]
                    return pick
            raise AssertionError("unreachable: fewer candidates than files asked for")

        for i in range(per_size):
            chosen: dict[str, Candidate] = {}
            for j in range(min(size, len(candidates))):
                pick = draw((i + j) % STRATA, set(chosen))
                chosen[pick.path] = pick
            changes.append(ChangeSpec(size, i, tuple(chosen[path] for path in sorted(chosen))))
    return changes


# --------------------------------------------------------------------------------------------
# Instruments used inside a measuring process


class ChildMemory:
    """Peak RSS of the analyzer processes started in this process, as each program itself uses it.

    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` alone is not enough: the kernel carries a process's
    high-water mark across exec, so a child's includes the pages it shared with its spawner at fork
    and no analyzer started from a 50 MB Python process reads below 50 MB (Bandit's own peak on one
    file is ~28 MB, ruff's ~12 MB). So this records the pid of every process asyncio starts and
    polls ``/proc/<pid>/status``: the last ``VmHWM`` read is the program's own peak (a Python entry
    point that execs another program, like ``semgrep --experimental``, counts as the program it
    execs); the largest sum of ``VmRSS`` over one poll is what the analyzers held together. Sampled
    every ``interval`` s, so a process living less long (ruff on one file) may be read before its
    peak; ``semgrep scan``'s own child is not followed.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.names: dict[int, str] = {}
        self.hwm_mb: dict[int, float] = {}
        self.together_mb = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ChildMemory:
        original = self._original = asyncio.create_subprocess_exec

        async def spy(program: str, *args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
            proc = await original(program, *args, **kwargs)  # returns once the exec succeeded
            with self._lock:
                self.names[proc.pid] = Path(program).name
            self._poll()
            return proc

        asyncio.create_subprocess_exec = spy  # type: ignore[assignment]  # a throwaway process
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        asyncio.create_subprocess_exec = self._original

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def _poll(self) -> None:
        with self._lock:
            together = 0.0
            for pid in self.names:
                status = _proc_status(pid)
                if status:
                    self.hwm_mb[pid] = status.get("VmHWM", 0.0)
                    together += status.get("VmRSS", 0.0)
            self.together_mb = max(self.together_mb, together)

    def peak_by_name(self) -> dict[str, float]:
        peaks: dict[str, float] = {}
        for pid, name in self.names.items():
            peaks[name] = max(peaks.get(name, 0.0), self.hwm_mb.get(pid, 0.0))
        return peaks


def _proc_status(pid: int) -> dict[str, float]:
    """VmHWM/VmRSS of a live process, in MB; empty once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    return values if "VmRSS" in values else {}  # a zombie has no memory lines


class Timed:
    """An analyzer wrapper recording when the pipeline starts and finishes it (one await, no copy)."""

    def __init__(self, inner: Analyzer) -> None:
        self.inner = inner
        self.name = inner.name
        self.spans: list[tuple[float, float]] = []

    def wants(self, path: str) -> bool:
        return self.inner.wants(path)

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        started = time.perf_counter()
        try:
            return await self.inner.run(root, paths, timeout)
        finally:
            self.spans.append((started, time.perf_counter()))


def bandit_inprocess(root: Path, paths: list[str]) -> tuple[list[Key], list[str]]:
    """Bandit through its manager API, driven as its CLI drives it (all tests, no config file)."""
    from bandit.core import config as b_config
    from bandit.core import manager as b_manager

    mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
    cwd = os.getcwd()
    os.chdir(root)  # the subprocess too runs in the workspace, on ./relative paths
    try:
        mgr.discover_files(paths, recursive=False)
        mgr.run_tests()
    finally:
        os.chdir(cwd)
    keys = [
        (i.test_id, os.path.normpath(i.fname), min(i.linerange or [i.lineno])) for i in mgr.get_issue_list()
    ]
    skipped = [f"bandit could not analyze {name}: {reason}" for name, reason in mgr.get_skipped()]
    return sorted(keys), skipped


# --------------------------------------------------------------------------------------------
# One measurement, in a forked process


@dataclass
class Sample:
    kind: str
    change: str
    size: int
    run: int
    wall: float = 0.0
    cpu_children: float = 0.0  # user+sys of the analyzer processes
    peak_mb: dict[str, float] = field(default_factory=dict)  # per analyzer program (ChildMemory)
    together_mb: float = 0.0  # analyzer processes' RSS summed at one instant, the largest seen
    ru_children_mb: float = 0.0  # getrusage(RUSAGE_CHILDREN).ru_maxrss, see ChildMemory
    self_mb: float = 0.0  # getrusage(RUSAGE_SELF).ru_maxrss of the measuring process
    self_start_mb: float = 0.0  # its RSS just before the measured call
    keys: list[Key] = field(default_factory=list)  # raw findings (alone) or kept comments (pipeline)
    errors: list[str] = field(default_factory=list)
    in_pipeline: dict[str, float] = field(default_factory=dict)  # review.timings
    # The pipeline's timeline: review start -> first analyzer started (workspace, config) -> last
    # analyzer finished -> review returned (filter, render). before + analyzers + after = wall.
    before: float = 0.0
    analyzers: float = 0.0
    after: float = 0.0


@dataclass
class Bench:
    engines: dict[str, Engine]  # PIPELINE and PIPELINE_ALL
    analyzers: dict[str, Analyzer]  # the three as the engine holds them, plus SEMGREP_PY
    config: RepoConfig
    timeout: float


def calibrate(n: int = 5_000_000) -> float:
    """Seconds for a fixed pure-Python loop: how fast this (virtual) machine is right now."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - started


def _rss_now_mb() -> float:
    return _proc_status(os.getpid()).get("VmRSS", 0.0)


async def _measure(bench: Bench, spec: ChangeSpec, kind: str, sample: Sample) -> None:
    change = spec.change()
    if kind in bench.engines:
        engine = bench.engines[kind]
        sample.self_start_mb = _rss_now_mb()
        started = time.perf_counter()
        review = await engine.review(change, bench.config)
        finished = time.perf_counter()
        sample.wall = finished - started
        sample.keys = sorted((c.finding.rule_id, c.path, c.line) for c in review.all_comments)
        sample.errors = list(review.errors)
        sample.in_pipeline = dict(review.timings)
        spans = [span for a in engine.analyzers if isinstance(a, Timed) for span in a.spans]
        if spans:
            first, last = min(a for a, _ in spans), max(b for _, b in spans)
            sample.before, sample.analyzers, sample.after = first - started, last - first, finished - last
        return
    analyzer = bench.analyzers["bandit" if kind == BANDIT_INPROC else kind]
    with Workspace(change.files) as ws:
        paths = [p for p in ws.written if analyzer.wants(p)]
        sample.self_start_mb = _rss_now_mb()
        started = time.perf_counter()
        if kind == BANDIT_INPROC:
            sample.keys, sample.errors = bandit_inprocess(ws.root, paths)
            sample.wall = time.perf_counter() - started
        else:
            result = await analyzer.run(ws.root, paths, bench.timeout)
            sample.wall = time.perf_counter() - started
            sample.keys = sorted((f.rule_id, f.path, f.line) for f in result.findings)
            sample.errors = list(result.errors)


def _child(conn: Connection, bench: Bench, spec: ChangeSpec, kind: str, run: int) -> None:
    sample = Sample(kind, spec.name, spec.size, run)
    try:
        with ChildMemory() as memory:
            asyncio.run(_measure(bench, spec, kind, sample))
        sample.peak_mb, sample.together_mb = memory.peak_by_name(), memory.together_mb
    except Exception as exc:  # report it; never leave the parent waiting
        sample.errors.append(f"{kind} raised {type(exc).__name__}: {exc}")
        sample.wall = float("nan")
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    sample.cpu_children = children.ru_utime + children.ru_stime
    sample.ru_children_mb = children.ru_maxrss / 1024  # KiB on Linux
    sample.self_mb = own.ru_maxrss / 1024
    conn.send(sample)
    conn.close()


def measure(bench: Bench, spec: ChangeSpec, kind: str, run: int) -> Sample:
    """One measurement in a forked process: fresh rusage, the parent's imports already warm."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, bench, spec, kind, run))
    proc.start()
    sender.close()
    try:
        sample: Sample = receiver.recv()
    except EOFError:
        sample = Sample(kind, spec.name, spec.size, run, wall=float("nan"), errors=[f"{kind}: worker died"])
    proc.join()
    return sample


# --------------------------------------------------------------------------------------------
# Statistics and the report


def num(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"


def med_p90(values: Sequence[float]) -> str:
    return f"{num(median(values))} ({num(p90(values))})" if values else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


@dataclass
class Paired:
    """The samples of one change in one run: one per kind."""

    spec: ChangeSpec
    run: int
    by_kind: dict[str, Sample]

    def wall(self, kind: str) -> float:
        return self.by_kind[kind].wall

    @property
    def slowest(self) -> tuple[str, float]:
        return max(((k, self.wall(k)) for k in ANALYZERS), key=lambda kv: kv[1])

    @property
    def cold_sum(self) -> float:
        return sum(self.wall(k) for k in ANALYZERS)

    @property
    def cpu_alone(self) -> float:
        return sum(self.by_kind[k].cpu_children for k in ANALYZERS)

    @property
    def floor(self) -> float:
        """The best any concurrent schedule can do here: the slowest analyzer, or all their CPU on NCPU cores."""
        return max(self.slowest[1], self.cpu_alone / NCPU)

    def overhead(self, kind: str = PIPELINE) -> float:
        return self.wall(kind) - self.slowest[1]

    def contention(self, kind: str = PIPELINE) -> float:
        """How much longer the analyzers took together in the pipeline than the slowest alone."""
        return self.by_kind[kind].analyzers - self.slowest[1]


def values(ps: list[Paired], fn: Callable[[Paired], float]) -> list[float]:
    """``fn`` over the samples, NaN (a failed measurement) dropped."""
    return [v for p in ps if (v := fn(p)) == v]


def walls(ps: list[Paired], kind: str) -> list[float]:
    return values(ps, lambda p: p.wall(kind))


def inside(ps: list[Paired], kind: str, analyzer: str) -> list[float]:
    """Seconds of ``analyzer`` inside pipeline ``kind`` (review.timings)."""
    return values(ps, lambda p: p.by_kind[kind].in_pipeline.get(analyzer, float("nan")))


def own_peaks(ps: list[Paired], name: str) -> list[float]:
    """Peak RSS of the analyzer program ``name`` measured alone."""
    return [p.by_kind[name].peak_mb[name] for p in ps if name in p.by_kind[name].peak_mb]


def print_walls(groups: dict[int, list[Paired]]) -> None:
    print("\nWall time per change, s: median (p90). Alone = the cold subprocess the pipeline starts.")
    rows = []
    for size, ps in groups.items():
        rows.append([
            str(size), str(len(ps)), f"{median([p.spec.kbytes for p in ps]):.0f}",
            f"{median([p.spec.added for p in ps]):.0f}", *(med_p90(walls(ps, k)) for k in ANALYZERS),
            med_p90(values(ps, lambda p: p.cold_sum)), med_p90(walls(ps, PIPELINE)),
        ])  # fmt: skip
    print(table(["files", "samples", "KB", "+lines", *ANALYZERS, "cold sum", "pipeline"], rows))


def print_overhead(groups: dict[int, list[Paired]]) -> list[str]:
    """The overhead table; returns one verdict line per size."""
    print(
        "\nPipeline overhead = pipeline - slowest analyzer alone (same change and run); medians (p90)."
        f"\n  floor      = max(slowest alone, CPU seconds of the three alone / {NCPU} cores)"
        "\n  where it goes, on the pipeline's own timeline (before + contention + after = overhead):"
        "\n    before     = review start -> first analyzer started (workspace written, paths chosen)"
        "\n    contention = first analyzer started -> last one finished, minus the slowest analyzer alone"
        "\n    after      = last analyzer finished -> review returned (thresholds, filter, render)"
        "\n  cpu        = CPU seconds of the analyzer processes: the three alone, summed / in the pipeline"
    )
    rows, verdicts = [], []
    for size, ps in groups.items():
        slow, over = values(ps, lambda p: p.slowest[1]), values(ps, lambda p: p.overhead())
        pct = values(ps, lambda p: 100 * p.overhead() / p.slowest[1])
        which = Counter(p.slowest[0] for p in ps).most_common()
        kept = [len(p.by_kind[PIPELINE].keys) for p in ps]
        rows.append([
            str(size), num(median(slow)), " ".join(f"{n}:{c}" for n, c in which),
            num(median(values(ps, lambda p: p.floor))), med_p90(over), f"{median(pct):.0f} ({p90(pct):.0f})",
            num(median(values(ps, lambda p: p.by_kind[PIPELINE].before))),
            med_p90(values(ps, lambda p: p.contention())),
            num(median(values(ps, lambda p: p.by_kind[PIPELINE].after))),
            f"{num(median(values(ps, lambda p: p.cpu_alone)))} / "
            f"{num(median(values(ps, lambda p: p.by_kind[PIPELINE].cpu_children)))}",
            f"{median(kept):.0f} / {sum(kept)}",
        ])  # fmt: skip
        allowed = max(TARGET_FRACTION * median(slow), TARGET_SECONDS)
        pipe, cold = median(walls(ps, PIPELINE)), median(values(ps, lambda p: p.cold_sum))
        within, below = median(over) <= allowed, pipe < cold
        verdicts.append(
            f"{size:>3} files: {'OK  ' if within and below else 'MISS'} pipeline {num(pipe)} s, slowest alone "
            f"{num(median(slow))} s: overhead {median(over):+.2f} s ({median(pct):+.0f} %, allowed "
            f"{allowed:.2f} s) -> {'within' if within else 'OVER'}; cold sum {num(cold)} s -> "
            f"{'below' if below else 'NOT below'}"
        )
    headers = ["files", "slowest", "which", "floor", "overhead s", "overhead %", "before", "contention", "after",
               "cpu alone / pipe", "kept med / total"]  # fmt: skip
    print(table(headers, rows))
    return verdicts


def print_inside(groups: dict[int, list[Paired]]) -> None:
    print("\nEach analyzer alone -> inside the pipeline, s (medians).")
    rows = [
        [
            str(size),
            *(f"{num(median(walls(ps, k)))} -> {num(median(inside(ps, PIPELINE, k)))}" for k in ANALYZERS),
        ]
        for size, ps in groups.items()
    ]
    print(table(["files", *ANALYZERS], rows))


def print_jobs_probe(groups: dict[int, list[Paired]]) -> None:
    print(
        "\nProbe: the pipeline with Semgrep on every core (`--jobs <cores>`, its own default), against the"
        "\nbot's choice (every core but one while Bandit and ruff run beside it)."
        "\nSame changes and runs; 'same' = identical comments to the default pipeline."
    )
    rows = []
    for size, ps in groups.items():
        same = sum(p.by_kind[PIPELINE_ALL].keys == p.by_kind[PIPELINE].keys for p in ps)
        rows.append([
            str(size), med_p90(walls(ps, PIPELINE)), med_p90(walls(ps, PIPELINE_ALL)),
            med_p90(values(ps, lambda p: p.overhead(PIPELINE_ALL))),
            med_p90(values(ps, lambda p: p.contention(PIPELINE_ALL))),
            f"{num(median(inside(ps, PIPELINE_ALL, 'bandit')))} / {num(median(inside(ps, PIPELINE_ALL, 'semgrep')))}",
            num(median(values(ps, lambda p: p.by_kind[PIPELINE_ALL].cpu_children))), f"{same}/{len(ps)}",
        ])  # fmt: skip
    headers = ["files", "pipeline", "pipeline -jall", "overhead -jall", "contention -jall", "bandit / semgrep in it",
               "cpu", "same"]  # fmt: skip
    print(table(headers, rows))


def print_memory(groups: dict[int, list[Paired]]) -> None:
    print(
        "\nPeak RSS, MB (medians). Per program: its own peak (ChildMemory, /proc VmHWM); together: the"
        "\nanalyzers' summed RSS in the pipeline; ru_maxrss: what getrusage(RUSAGE_CHILDREN) reports for"
        "\nthe pipeline (floored at the spawner's size: the 'bot before' column); bot: the pipeline process"
        "\n(getrusage(RUSAGE_SELF)), forked from the benchmark, before the review and at its peak."
    )
    rows = []
    for size, ps in groups.items():
        pipes = [p.by_kind[PIPELINE] for p in ps]
        rows.append([
            str(size), *(f"{median(own_peaks(ps, k)):.0f}" for k in ANALYZERS),
            f"{median([x.together_mb for x in pipes]):.0f}", f"{median([x.ru_children_mb for x in pipes]):.0f}",
            f"{median([x.self_start_mb for x in pipes]):.0f}", f"{median([x.self_mb for x in pipes]):.0f}",
        ])  # fmt: skip
    print(
        table(["files", "bandit", "semgrep", "ruff", "together", "ru_maxrss", "bot before", "bot peak"], rows)
    )


def print_semgrep_startup(groups: dict[int, list[Paired]]) -> None:
    print("\nSemgrep start-up: `semgrep scan` (Python wrapper) vs `semgrep scan --experimental` (the bot's).")
    rows = []
    for size, ps in groups.items():
        py, ml = walls(ps, SEMGREP_PY), walls(ps, "semgrep")
        ratio = values(ps, lambda p: p.wall(SEMGREP_PY) / p.wall("semgrep"))
        same = sum(p.by_kind[SEMGREP_PY].keys == p.by_kind["semgrep"].keys for p in ps)
        found = sum(len(p.by_kind["semgrep"].keys) for p in ps)
        rows.append([
            str(size), med_p90(py), med_p90(ml), num(median(py) - median(ml)), f"{median(ratio):.1f}x",
            f"{same}/{len(ps)} ({found} findings)",
        ])  # fmt: skip
    print(table(["files", "semgrep scan", "--experimental", "saved s", "speed-up", "same findings"], rows))


def print_bandit_inprocess(groups: dict[int, list[Paired]], import_seconds: float) -> None:
    print(
        "\nBandit: subprocess (the bot's) vs in-process BanditManager (modules imported beforehand;"
        "\nin-process it runs on the event-loop thread, holding the GIL, with no timeout that can kill it)."
    )
    rows = []
    for size, ps in groups.items():
        sub, inp = walls(ps, "bandit"), walls(ps, BANDIT_INPROC)
        grow = [p.by_kind[BANDIT_INPROC].self_mb - p.by_kind[BANDIT_INPROC].self_start_mb for p in ps]
        same = sum(p.by_kind[BANDIT_INPROC].keys == p.by_kind["bandit"].keys for p in ps)
        rows.append([
            str(size), med_p90(sub), med_p90(inp), num(median(sub) - median(inp)), f"{median(grow):.0f}",
            f"{same}/{len(ps)}",
        ])  # fmt: skip
    print(
        table(
            ["files", "subprocess", "in-process", "saved s", "process RSS growth MB", "same findings"], rows
        )
    )
    print(f"(importing bandit.core.manager, paid once by an in-process server: {import_seconds:.2f} s)")


def report(groups: dict[int, list[Paired]], kinds: Sequence[str], bandit_import: float) -> list[str]:
    """Print the tables; return the verdict lines (printed last)."""
    groups = dict(sorted(groups.items()))
    print_walls(groups)
    verdicts = print_overhead(groups)
    print_inside(groups)
    if PIPELINE_ALL in kinds:
        print_jobs_probe(groups)
    print_memory(groups)
    if SEMGREP_PY in kinds:
        print_semgrep_startup(groups)
    if BANDIT_INPROC in kinds:
        print_bandit_inprocess(groups, bandit_import)
    return verdicts


# --------------------------------------------------------------------------------------------
# Machine info and main


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _proc_field(path: str, key: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def machine_info(releases: Sequence[str], n_candidates: int, too_big: list[str]) -> list[str]:
    mem_gb = int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) / 1024**2
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("semgrep", "bandit", "ruff")
    )
    left_out = f"; left out (over max_file_bytes): {', '.join(too_big)}" if too_big else ""
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"machine: nproc {NCPU} ({_proc_field('/proc/cpuinfo', 'model name')}), {mem_gb:.0f} GB RAM, "
        f"{platform.platform()}",
        f"python: {platform.python_version()} ({sys.executable})",
        f"tools: {versions}",
        f"corpus: {PACKAGE} {releases[0]} -> {releases[1]}: {n_candidates} modified .py files under "
        f"{PACKAGE}/{left_out}",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="repetitions of every change (default 2)")
    ap.add_argument("--sizes", default="1,3,10,30", help="files per change (default 1,3,10,30)")
    ap.add_argument("--changes", type=int, default=5, help="different changes per size (default 5)")
    ap.add_argument("--seed", type=int, default=1, help="choice of files and order of measurements")
    ap.add_argument("--releases", default=",".join(DEFAULT_RELEASES), help="two nova versions: A,B")
    ap.add_argument("--quick", action="store_true", help=f"skip {', '.join(EXTRAS)}")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.releases = tuple(args.releases.split(","))
    if len(args.releases) != 2 or args.runs < 1 or args.changes < 1 or not args.sizes or min(args.sizes) < 1:
        ap.error("need two releases, --runs >= 1, --changes >= 1 and sizes >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    old_root, new_root = (fetch_release(v) for v in args.releases)
    defaults = load_settings(environ={})  # config/default.yaml: what a server runs with no config
    settings = defaults.engine
    candidates, too_big = differing_files(old_root, new_root, settings.max_file_bytes)
    if not candidates:
        raise SystemExit("the two releases have no differing .py files")
    changes = build_changes(candidates, args.sizes, args.changes, args.seed)

    engine = Engine.from_settings(settings)
    analyzers: dict[str, Analyzer] = {a.name: a for a in engine.analyzers}
    semgrep = analyzers["semgrep"]
    assert isinstance(semgrep, SemgrepAnalyzer)
    analyzers[SEMGREP_PY] = SemgrepAnalyzer(
        semgrep.rules_dir,
        experimental=False,
        max_target_bytes=semgrep.max_target_bytes,
        jobs=os.cpu_count() or 1,
    )
    # Semgrep alone runs at its own default, one job per core: its best time alone. The bot gives
    # it one core less beside Bandit and ruff; the probe runs the pipeline with every core instead.
    all_cores = SemgrepAnalyzer(
        semgrep.rules_dir, experimental=semgrep.experimental, max_target_bytes=semgrep.max_target_bytes,
        jobs=os.cpu_count() or 1,
    )  # fmt: skip
    analyzers["semgrep"] = all_cores
    jall = [all_cores if a is semgrep else a for a in engine.analyzers]
    bench = Bench(
        engines={
            PIPELINE: Engine([Timed(a) for a in engine.analyzers], engine.catalog, settings),
            PIPELINE_ALL: Engine([Timed(a) for a in jall], engine.catalog, settings),
        },
        analyzers=analyzers,
        config=defaults.review,
        timeout=settings.analyzer_timeout,
    )
    # Read the rule files now (Semgrep's wants() parses them once per analyzer), as a server has
    # after its first review; every measuring process is forked from here.
    for analyzer in [*bench.analyzers.values(), *(a for e in bench.engines.values() for a in e.analyzers)]:
        analyzer.wants("warm.py")
    kinds = [*ANALYZERS, PIPELINE, *([] if args.quick else EXTRAS)]
    bandit_import = 0.0
    if BANDIT_INPROC in kinds:
        t0 = time.perf_counter()
        import bandit.core.manager  # noqa: F401  (paid once by a server running Bandit in-process)

        bandit_import = time.perf_counter() - t0

    for line in machine_info(args.releases, len(candidates), too_big):
        print(line)
    print(
        f"plan: sizes {args.sizes}, {args.changes} changes per size x {args.runs} runs, seed {args.seed};"
        f" measured: {', '.join(kinds)}; rules: {len(semgrep.rule_files)} files in {semgrep.rules_dir}",
        flush=True,
    )

    log("warm-up (discarded)")
    for kind in kinds:
        measure(bench, changes[0], kind, -1)

    groups: dict[int, list[Paired]] = {s: [] for s in args.sizes}
    errors: Counter[str] = Counter()
    order = random.Random(args.seed)
    speed: list[float] = []
    done, total = 0, len(changes) * args.runs
    for run in range(args.runs):
        for spec in changes:
            speed.append(calibrate())
            samples = {k: measure(bench, spec, k, run) for k in order.sample(kinds, len(kinds))}
            samples = {k: samples[k] for k in kinds}
            for sample in samples.values():
                errors.update(f"{sample.kind}: {e}" for e in sample.errors)
            groups[spec.size].append(Paired(spec, run, samples))
            done += 1
            log(
                f"[{done}/{total}] run {run + 1} {spec.name} ({spec.kbytes:.0f} KB, +{spec.added}): "
                + ", ".join(f"{k} {num(s.wall)}" for k, s in samples.items())
            )

    verdicts = report(groups, kinds, bandit_import)
    print(
        f"\nMachine steadiness: a fixed CPU loop, timed before each change, took {min(speed):.3f} .. "
        f"{max(speed):.3f} s (median {median(speed):.3f}, p90 {p90(speed):.3f})."
    )
    if errors:
        print("\nErrors reported by the analyzers or the pipeline (count over all samples):")
        for message, n in errors.most_common(10):
            print(f"  {n:3d}x {message[:160]}")
    print(
        f"\nVerdict (target: overhead <= max({TARGET_FRACTION:.0%} of the slowest analyzer alone, "
        f"{TARGET_SECONDS} s), and below the cold sum):"
    )
    for line in verdicts:
        print("  " + line)
    print(f"\nbenchmark wall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

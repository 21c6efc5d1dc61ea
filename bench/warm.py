"""Fast reviews (issue 11): cold vs warm analyzers and focused large files, per change size, against
a cold ``semgrep scan`` of the same files.

Run by hand from the repository root (not a test)::

    PYTHONPATH=. .venv/bin/python bench/warm.py OLD_TREE NEW_TREE [--sizes 1,3,10,30] [--changes 3]
        [--runs 2] [--big nova/tests/unit/virt/libvirt/test_driver.py] [--seed 1]

OLD_TREE and NEW_TREE are two releases of a project unpacked from their sdists, e.g.
``pip download --no-deps --no-binary :all: nova==33.0.0`` and ``nova==34.0.0``. A change of size
*n* is *n* ``.py`` files that differ between the releases (drawn with a fixed seed), with their
real hunks; ``big`` is one file changed on ten lines in its middle (Nova's 1.5 MB test_driver.py).

Each change is measured ``--runs`` times, the measurements interleaved so that the machine's drift
hits them alike (no result cache anywhere):

- ``semgrep scan``: Semgrep's own CLI, cold, on the change's files with the bundled rules: the yardstick;
- ``before``: the engine as it was before this work: Semgrep's OCaml CLI per review, warm Bandit,
  no focusing of large files;
- ``cold``: the engine of a one-off ``patchwarden check`` (both CLIs per review, focusing on);
- ``warm``: the service's engine (one ``semgrep lsp`` and Bandit's worker processes kept between
  reviews, focusing on);
- ``check`` / ``check+daemon``: the real ``patchwarden check`` process on a git repository holding
  the change, without and with the local daemon (``--no-daemon`` / a running daemon).

Every review's comments are checked equal to the ``before`` one's. Prints one table (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.analyzers import BanditAnalyzer, RuffAnalyzer, SemgrepAnalyzer
from bot.analyzers.base import tool_path
from bot.config import EngineSettings, RepoConfig
from bot.diff import diff_contents
from bot.model import Change, ChangedFile, FileStatus, Hunk
from bot.pipeline import Engine
from bot.render import default_catalog
from bot.resources import data_path

RULES = Path(data_path("rules", "semgrep"))


def candidates(old: Path, new: Path) -> list[tuple[str, bytes, bytes]]:
    out = []
    for path in sorted(new.rglob("*.py")):
        rel = path.relative_to(new).as_posix()
        before = old / rel
        if before.is_file() and before.read_bytes() != path.read_bytes() and path.stat().st_size < 1_000_000:
            out.append((rel, before.read_bytes(), path.read_bytes()))
    return out


def as_change(files: list[tuple[str, bytes, bytes]]) -> Change:
    changed = []
    for rel, old, new in files:
        d = diff_contents(rel, old, new)
        changed.append(ChangedFile(rel, FileStatus.MODIFIED, new, added_lines=d.added_lines, hunks=d.hunks))
    return Change(changed)


def big_change(tree: Path, rel: str) -> Change:
    content = (tree / rel).read_bytes()
    middle = len(content.splitlines()) // 2
    lines = frozenset(range(middle, middle + 10))
    hunk = Hunk(middle - 3, middle + 12)
    return Change([ChangedFile(rel, FileStatus.MODIFIED, content, added_lines=lines, hunks=(hunk,))])


def write(root: Path, change: Change) -> None:
    for f in change.files:
        (root / f.path).parent.mkdir(parents=True, exist_ok=True)
        (root / f.path).write_bytes(f.content or b"")


def semgrep_scan(root: Path, change: Change) -> float:
    argv = [tool_path("semgrep"), "scan", "--json", "--metrics=off", "--disable-version-check", "--quiet"]
    argv += ["--max-target-bytes=10000000"]
    for rule_file in sorted(RULES.glob("*.yaml")):
        if not rule_file.name.endswith(".test.yaml"):
            argv += ["--config", str(rule_file)]
    argv += ["--", *(f.path for f in change.files)]
    started = time.perf_counter()
    subprocess.run(
        argv,
        cwd=root,
        capture_output=True,
        check=False,
        env={**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0"},
    )
    return time.perf_counter() - started


def without_added_lines(change: Change) -> list[tuple[str, bytes, bytes]]:
    """(path, base, head) of a change made of ten added lines: the base lacks them."""
    out = []
    for f in change.files:
        lines = (f.content or b"").splitlines(keepends=True)
        base = [line for n, line in enumerate(lines, 1) if n not in f.added_lines]
        out.append((f.path, b"".join(base), f.content or b""))
    return out


def git_repo(root: Path, pairs: list[tuple[str, bytes, bytes]]) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    git("config", "user.email", "bench@example.com")
    git("config", "user.name", "bench")
    for rel, old, _ in pairs:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(old)
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    for rel, _, new in pairs:
        (root / rel).write_bytes(new)
    git("add", "-A")
    git("commit", "-q", "-m", "change")
    return root


def check_cli(repo: Path, env: dict, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot", "check", "--format", "json", *args],
        cwd=repo, env=env, capture_output=True, check=False, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


def engines() -> dict[str, Engine]:
    settings = EngineSettings()
    before = Engine(
        [BanditAnalyzer(), SemgrepAnalyzer(RULES, max_target_bytes=settings.max_file_bytes), RuffAnalyzer()],
        default_catalog(),
        settings.model_copy(update={"focus_min_bytes": 0}),
    )
    cold = Engine(
        [
            BanditAnalyzer(warm=False),
            SemgrepAnalyzer(RULES, max_target_bytes=settings.max_file_bytes),
            RuffAnalyzer(),
        ],
        default_catalog(),
        settings,
    )
    return {"before": before, "cold": cold, "warm": Engine.from_settings(settings, warm=True)}


def seen(review) -> list:
    return sorted((c.path, c.line, c.finding.rule_id) for c in review.all_comments)


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("old_tree", type=Path)
    ap.add_argument("new_tree", type=Path)
    ap.add_argument("--sizes", default="1,3,10,30")
    ap.add_argument("--changes", type=int, default=3)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--big", default="nova/tests/unit/virt/libvirt/test_driver.py")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = candidates(args.old_tree, args.new_tree)
    groups: dict[str, list[tuple[Change, list]]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        groups[str(size)] = []
        for _ in range(args.changes):
            files = rng.sample(pool, size)
            groups[str(size)].append((as_change(files), files))
    if args.big and (args.new_tree / args.big).is_file():
        big = big_change(args.new_tree, args.big)
        groups["1.5 MB file"] = [(big, without_added_lines(big))]
    eng = engines()
    config = RepoConfig()
    times: dict[str, dict[str, list[float]]] = {g: {} for g in groups}
    mismatches = 0
    with tempfile.TemporaryDirectory(prefix="patchwarden-bench-warm-") as tmp:
        work = Path(tmp)
        run_dir = work / "run"
        run_dir.mkdir(mode=0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
        subprocess.Popen(
            [sys.executable, "-m", "bot", "daemon", "run", "--idle", "3600"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for e in eng.values():  # warm-up: servers and workers started, imports done
            await e.review(groups[next(iter(groups))][0][0], config)
        try:
            for index, (name, changes) in enumerate(groups.items()):
                for number, (change, files) in enumerate(changes):
                    root = work / f"files-{index}-{number}"
                    write(root, change)
                    repo = git_repo(work / f"repo-{index}-{number}", files)
                    check_cli(repo, env)  # the daemon's first sight of these files
                    for run in range(args.runs):
                        kinds = ["semgrep scan", "before", "cold", "warm", "check", "check+daemon"]
                        random.Random(run + number).shuffle(kinds)
                        reference = None
                        for kind in kinds:
                            if kind == "semgrep scan":
                                t = semgrep_scan(root, change)
                            elif kind == "check":
                                t = check_cli(repo, env, "--no-daemon")
                            elif kind == "check+daemon":
                                t = check_cli(repo, env)
                            else:
                                started = time.perf_counter()
                                review = await eng[kind].review(change, config)
                                t = time.perf_counter() - started
                                if reference is None:
                                    reference = seen(review)
                                elif seen(review) != reference:
                                    mismatches += 1
                                    print(f"MISMATCH {kind} on {name} #{number}", file=sys.stderr)
                            times[name].setdefault(kind, []).append(t)
                    print(f"{name} #{number} done", file=sys.stderr)
        finally:
            subprocess.run(
                [sys.executable, "-m", "bot", "daemon", "stop"], env=env, capture_output=True, check=False
            )
            for e in eng.values():
                await e.close()
    kinds = ["semgrep scan", "before", "cold", "warm", "check", "check+daemon"]
    print("| change | " + " | ".join(kinds) + " | warm / scan | check+daemon / scan | check / scan |")
    print("|---|" + "---|" * (len(kinds) + 3))
    for name, by_kind in times.items():
        med = {k: statistics.median(v) for k, v in by_kind.items()}
        cells = [f"{med[k]:.2f} s" for k in kinds]
        ratios = [med[k] / med["semgrep scan"] for k in ("warm", "check+daemon", "check")]
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    print(f"\ncomments differing from the 'before' engine's: {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

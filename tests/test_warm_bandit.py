"""Warm Bandit (bot.analyzers.bandit_worker): exactly the CLI's findings, and a worker that
crashes, hangs, runs out of time or over its memory ceiling is replaced and never yields a clean
result."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bot.analyzers import AnalyzerError, BanditAnalyzer
from bot.analyzers.bandit_worker import BanditWorkerPool
from bot.config import EngineSettings
from bot.model import Change, ChangedFile, FileStatus, Hunk
from bot.pipeline import Engine
from bot.render import default_catalog

ROOT = Path(__file__).resolve().parent.parent
RULE_TARGETS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "rules" / "semgrep").glob("*.py"))
REPO_PYTHON = sorted(
    p.relative_to(ROOT).as_posix()
    for d in ("bot", "tests", "bench")
    for p in (ROOT / d).rglob("*.py")
    if ".cache" not in p.parts
)
SLOW = "import subprocess\n\n\ndef f(x):\n" + "    subprocess.call(x, shell=True)\n" * 20_000


@pytest.fixture
def pool():
    pool = BanditWorkerPool(size=1)
    yield pool
    pool.close()


def seen(result) -> tuple[list, list[str]]:
    return [vars(f) for f in result.findings], result.errors


async def test_the_warm_worker_finds_exactly_what_the_cli_finds(pool, tmp_path):
    cold, warm = BanditAnalyzer(warm=False), BanditAnalyzer(pool=pool)
    # The rule test targets (lots of vulnerable idioms), one by one and all at once.
    for path in RULE_TARGETS:
        assert seen(await warm.run(ROOT, [path], 120)) == seen(await cold.run(ROOT, [path], 120)), path
    together = await cold.run(ROOT, RULE_TARGETS, 120)
    assert len(together.findings) > 50
    assert seen(await warm.run(ROOT, RULE_TARGETS, 120)) == seen(together)
    # Every Python file of the repository, in one run.
    everything = await cold.run(ROOT, REPO_PYTHON, 300)
    assert len(REPO_PYTHON) > 50 and everything.findings
    assert seen(await warm.run(ROOT, REPO_PYTHON, 300)) == seen(everything)
    # Files Bandit cannot analyze, # nosec, and a file outside Bandit's *.py glob.
    (tmp_path / "py2.py").write_text("print 'x'\n")
    (tmp_path / "latin1.py").write_bytes(b"# -*- coding: utf-8 -*-\nx = '\xe9'\n")
    (tmp_path / "nosec.py").write_text("import subprocess\nsubprocess.call(x, shell=True)  # nosec\n")
    (tmp_path / "tool").write_text("import pickle\npickle.loads(b'')\n")
    odd = ["py2.py", "latin1.py", "nosec.py", "tool"]
    expected = await cold.run(tmp_path, odd, 120)
    assert expected.errors and seen(await warm.run(tmp_path, odd, 120)) == seen(expected)
    assert pool.started == 1, "one worker served every request"


async def test_a_worker_serves_one_event_loop_after_another(pool):
    analyzer = BanditAnalyzer(pool=pool)
    first = await analyzer.run(ROOT, RULE_TARGETS[:1], 60)
    pid = pool.workers()[0].pid

    def other_loop():
        return asyncio.run(analyzer.run(ROOT, RULE_TARGETS[:1], 60))

    second = await asyncio.to_thread(other_loop)
    assert seen(first) == seen(second) and pool.workers()[0].pid == pid


async def test_a_timeout_kills_the_worker_and_the_next_review_gets_a_new_one(pool, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "ok.py").write_text("import pickle\npickle.loads(b'')\n")
    analyzer = BanditAnalyzer(pool=pool)
    await analyzer.run(tmp_path, ["ok.py"], 60)
    old = pool.workers()[0].pid
    with pytest.raises(AnalyzerError, match=r"timed out after 0.5 s"):
        await analyzer.run(tmp_path, ["slow.py"], 0.5)
    assert not _alive(old) and pool.replaced == 1
    result = await analyzer.run(tmp_path, ["ok.py"], 60)
    assert [f.rule_id for f in result.findings] == ["B403", "B301"]
    assert pool.workers()[0].pid != old


async def test_a_crashed_worker_is_an_error_then_replaced(pool, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    analyzer = BanditAnalyzer(pool=pool)
    await analyzer.run(ROOT, RULE_TARGETS[:1], 60)
    victim = pool.workers()[0].pid
    killer = threading.Timer(0.3, os.kill, (victim, signal.SIGKILL))
    killer.start()
    with pytest.raises(AnalyzerError, match=r"crashed: .*signal 9"):
        await analyzer.run(tmp_path, ["slow.py"], 60)
    killer.join()
    assert (await analyzer.run(ROOT, RULE_TARGETS[:1], 60)).findings
    assert pool.workers()[0].pid != victim


async def test_a_hung_worker_is_killed_at_the_timeout(pool):
    analyzer = BanditAnalyzer(pool=pool)
    await analyzer.run(ROOT, RULE_TARGETS[:1], 60)
    hung = pool.workers()[0].pid
    os.kill(hung, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(AnalyzerError, match="timed out after 1 s"):
        await analyzer.run(ROOT, RULE_TARGETS[:1], 1)
    assert time.monotonic() - started < 5 and not _alive(hung)
    assert (await analyzer.run(ROOT, RULE_TARGETS[:1], 60)).findings


async def test_over_the_memory_ceiling_the_review_is_incomplete_never_clean(settings):
    tight = BanditWorkerPool(size=1, memory_limit=8 * 2**20)  # less than Python with Bandit loaded
    try:
        engine = Engine([BanditAnalyzer(pool=tight)], default_catalog(), EngineSettings())
        content = b"import subprocess\nsubprocess.call(x, shell=True)\n"
        change = Change([ChangedFile("a.py", FileStatus.ADDED, content, frozenset({1, 2}), (Hunk(1, 2),))])
        review = await engine.review(change, settings.review)
        assert review.comments == []
        assert len(review.errors) == 1 and "memory ceiling of 8 MB" in review.errors[0]
        assert review.errors[0].startswith("bandit ") and "its checks did not run" in review.errors[0]
        assert "**This review is incomplete**" in review.summary
        assert tight.workers() == []
    finally:
        tight.close()


async def test_a_cancelled_review_kills_its_worker(pool, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    analyzer = BanditAnalyzer(pool=pool)
    task = asyncio.create_task(analyzer.run(tmp_path, ["slow.py"], 60))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if pool.workers():
            break
    busy = pool.workers()[0].pid
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if not _alive(busy):
            break
        await asyncio.sleep(0.05)
    assert not _alive(busy)


async def test_the_engine_runs_bandit_warm_by_default(settings):
    engine = Engine.from_settings(EngineSettings())
    bandit = next(a for a in engine.analyzers if a.name == "bandit")
    assert bandit.warm
    content = b"import pickle\npickle.loads(b'')\n"
    change = Change([ChangedFile("a.py", FileStatus.ADDED, content, frozenset({1, 2}), (Hunk(1, 2),))])
    await engine.review(change, settings.review)
    await engine.review(change, settings.review)
    assert bandit.pool.started == 1 and len(bandit.pool.workers()) == 1
    bandit.pool.close()
    assert bandit.pool.workers() == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False

"""The per-file result cache (bot.cache) with the real analyzers: a cached review is the review,
only uncached files reach the analyzers, and an incomplete result is never cached."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from bot.analyzers import AnalyzerResult, BanditAnalyzer, RuffAnalyzer, SemgrepAnalyzer
from bot.cache import FileResult, ResultCache, split_by_file
from bot.config import EngineSettings
from bot.model import Change, ChangedFile, FileStatus, FilterMode, Finding, Hunk, Severity
from bot.pipeline import Engine
from bot.render import default_catalog
from bot.resources import data_path

SHELL = "import subprocess\nimport os\n\n\ndef run(x):\n    subprocess.call(x, shell=True)\n"
CLEAN = "def add(a, b):\n    return a + b\n"
BROKEN = "def f(:\n    pass\n"


def changed(path: str, text: str, lines: set[int] | None = None) -> ChangedFile:
    content = text.encode()
    n = max(1, len(text.splitlines()))
    added = frozenset(lines if lines is not None else range(1, n + 1))
    return ChangedFile(path, FileStatus.MODIFIED, content, added_lines=added, hunks=(Hunk(1, n),))


class Counting:
    """A real analyzer that records which files each of its runs was given."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.runs: list[list[str]] = []

    def wants(self, path: str) -> bool:
        return self.inner.wants(path)

    def cache_key(self) -> str:
        return self.inner.cache_key()

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        self.runs.append(list(paths))
        return await self.inner.run(root, paths, timeout)


def counting_engine(cache: ResultCache | None, timeout: float = 120.0) -> tuple[Engine, list[Counting]]:
    analyzers = [
        Counting(BanditAnalyzer()),
        Counting(SemgrepAnalyzer(Path(data_path("rules", "semgrep")))),
        Counting(RuffAnalyzer()),
    ]
    engine = Engine(analyzers, default_catalog(), EngineSettings(analyzer_timeout=timeout), cache)  # type: ignore[arg-type]
    return engine, analyzers


def as_seen(review) -> tuple:
    return (
        review.summary,
        [
            (c.path, c.line, c.finding.tool, c.finding.rule_id, c.body, c.fingerprint)
            for c in review.all_comments
        ],
        review.errors,
    )


async def test_a_rescan_runs_no_analyzer_and_reviews_the_same(settings):
    change = Change([changed("nova/a.py", SHELL), changed("nova/b.py", CLEAN)])
    plain, _ = counting_engine(None)
    cached, analyzers = counting_engine(ResultCache())
    expected = as_seen(await plain.review(change, settings.review))
    assert expected[1], "the change has findings"
    assert as_seen(await cached.review(change, settings.review)) == expected
    assert [a.runs for a in analyzers] == [[["nova/a.py", "nova/b.py"]]] * 3
    assert as_seen(await cached.review(change, settings.review)) == expected
    assert [len(a.runs) for a in analyzers] == [1, 1, 1], "nothing was started for the rescan"
    assert cached.cache.hits == 6


async def test_a_new_patchset_sends_only_the_changed_file(settings):
    engine, analyzers = counting_engine(ResultCache())
    await engine.review(Change([changed("a.py", SHELL), changed("b.py", CLEAN)]), settings.review)
    second = Change(
        [changed("a.py", SHELL), changed("b.py", CLEAN + "\n\ndef sub(a, b):\n    return a - b\n")]
    )
    plain, _ = counting_engine(None)
    assert as_seen(await engine.review(second, settings.review)) == as_seen(
        await plain.review(second, settings.review)
    )
    assert [a.runs[-1] for a in analyzers] == [["b.py"]] * 3


async def test_the_changed_line_filter_runs_on_cached_findings_as_on_fresh_ones(settings):
    """The cache holds findings before the filter: other changed lines, other comments."""
    engine, _ = counting_engine(ResultCache())
    plain, _ = counting_engine(None)
    for lines in ({1}, {6}, {2}, set()):
        change = Change([changed("a.py", SHELL, lines)])
        assert as_seen(await engine.review(change, settings.review)) == as_seen(
            await plain.review(change, settings.review)
        ), lines
    config = settings.review.model_copy(update={"filter_mode": FilterMode.NOFILTER})
    change = Change([changed("a.py", SHELL, set())])
    assert as_seen(await engine.review(change, config)) == as_seen(await plain.review(change, config))


async def test_the_same_bytes_at_another_path_are_analyzed_again(settings):
    engine, analyzers = counting_engine(ResultCache())
    await engine.review(Change([changed("a.py", SHELL)]), settings.review)
    await engine.review(Change([changed("tests/a.py", SHELL)]), settings.review)
    assert [a.runs for a in analyzers] == [[["a.py"], ["tests/a.py"]]] * 3


async def test_errors_that_follow_from_the_bytes_are_cached_and_reported_again(settings):
    engine, analyzers = counting_engine(ResultCache())
    plain, _ = counting_engine(None)
    change = Change([changed("broken.py", BROKEN), changed("ok.py", CLEAN)])
    expected = as_seen(await plain.review(change, settings.review))
    assert any("broken.py" in e for e in expected[2])
    first = as_seen(await engine.review(change, settings.review))
    again = as_seen(await engine.review(change, settings.review))
    assert sorted(first[2]) == sorted(again[2]) == sorted(expected[2])
    assert first[:2] == again[:2] == expected[:2]
    assert [len(a.runs) for a in analyzers] == [1, 1, 1]


async def test_a_timeout_is_never_cached(settings):
    cache = ResultCache()
    slow, _ = counting_engine(cache, timeout=0.01)
    review = await slow.review(Change([changed("a.py", SHELL)]), settings.review)
    timed_out = {e.split()[0] for e in review.errors if "timed out" in e}
    assert timed_out >= {"bandit", "semgrep"}
    engine, analyzers = counting_engine(cache)
    review = await engine.review(Change([changed("a.py", SHELL)]), settings.review)
    plain, _ = counting_engine(None)
    assert as_seen(review) == as_seen(await plain.review(Change([changed("a.py", SHELL)]), settings.review))
    assert not review.errors and review.comments
    assert {a.name for a in analyzers if a.runs} >= timed_out, "what timed out ran again"


async def test_a_crash_is_never_cached(settings):
    cache = ResultCache()
    broken = Engine([RuffAnalyzer(target_version="py9000")], default_catalog(), EngineSettings(), cache)
    review = await broken.review(Change([changed("a.py", "import os\n")]), settings.review)
    assert review.errors and review.errors[0].startswith("ruff crashed")
    assert len(cache) == 0


def test_a_result_is_only_for_its_bytes_path_and_analyzer(tmp_path):
    cache = ResultCache(tmp_path / "cache.sqlite3")
    result = FileResult([Finding("x", "R1", "a.py", 1, 2, "m", Severity.HIGH, fields={"k": "v"})], ["err"])
    cache.put_many("tool 1", {"a.py": (b"print(1)\n", result)})
    got = cache.get_many("tool 1", {"a.py": b"print(1)\n"})
    assert got["a.py"].findings == result.findings and got["a.py"].errors == ["err"]
    assert cache.get_many("tool 1", {"a.py": b"print(2)\n"}) == {}
    assert cache.get_many("tool 1", {"b.py": b"print(1)\n"}) == {}
    assert cache.get_many("tool 2", {"a.py": b"print(1)\n"}) == {}
    cache.close()
    reopened = ResultCache(tmp_path / "cache.sqlite3")
    assert reopened.get_many("tool 1", {"a.py": b"print(1)\n"})["a.py"].findings == result.findings
    # An entry whose stored digest does not match the content is never returned.
    reopened._db.execute("UPDATE results SET content_sha256 = 'x'")  # type: ignore[union-attr]
    assert reopened.get_many("tool 1", {"a.py": b"print(1)\n"}) == {}


def test_the_cache_is_bounded_least_recently_used_first():
    cache = ResultCache(max_entries=40)
    empty = FileResult([], [])
    for i in range(40):
        cache.put_many("t", {f"f{i}.py": (b"x", empty)})
    for i in range(40, 100):
        cache.get_many("t", {"f0.py": b"x"})  # in use all along: kept
        cache.put_many("t", {f"f{i}.py": (b"x", empty)})
        assert len(cache) <= 42  # pruned every max_entries // 20 puts
    cache.prune()
    assert len(cache) == 40
    assert "f0.py" in cache.get_many("t", {"f0.py": b"x"})
    assert cache.get_many("t", {"f1.py": b"x"}) == {}


async def test_an_unusable_cache_file_means_no_cache_not_a_failed_review(tmp_path, settings):
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    engine = Engine.from_settings(EngineSettings(), cache=path)
    review = await engine.review(Change([changed("a.py", SHELL)]), settings.review)
    assert review.comments and not review.errors


def test_the_service_cache_is_a_file_of_its_own(tmp_path):
    engine = Engine.from_settings(EngineSettings(), cache=tmp_path / "data" / "cache.sqlite3")
    assert isinstance(engine.cache, ResultCache)
    assert (
        sqlite3.connect(tmp_path / "data" / "cache.sqlite3")
        .execute("SELECT COUNT(*) FROM results")
        .fetchone()
    )
    assert Engine.from_settings(EngineSettings()).cache is None  # the CLI: no cache


def test_semgrep_rules_are_part_of_its_key(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(data_path("rules", "semgrep"), rules)
    analyzer = SemgrepAnalyzer(rules)
    before = analyzer.cache_key()
    assert analyzer.cache_key() == before
    rule_file = next(rules.glob("*.yaml"))
    rule_file.write_text(rule_file.read_text() + "\n# edited\n")
    assert analyzer.cache_key() != before
    assert SemgrepAnalyzer(rules, max_target_bytes=1).cache_key() != analyzer.cache_key()
    assert RuffAnalyzer(target_version="py38").cache_key() != RuffAnalyzer().cache_key()
    assert RuffAnalyzer(builtins=()).cache_key() != RuffAnalyzer().cache_key()


def test_a_run_is_split_by_file_only_when_complete():
    f = Finding("bandit", "B602", "a.py", 1, 1, "m", Severity.HIGH)
    ok = AnalyzerResult("bandit", findings=[f])
    ok.add_file_error("b.py", "bandit could not analyze b.py: syntax error")
    split = split_by_file(ok, ["a.py", "b.py"])
    assert split is not None and split["a.py"].findings == [f] and split["b.py"].errors
    whole = AnalyzerResult(
        "bandit", findings=[f], errors=["bandit timed out after 1 s; its checks did not run"]
    )
    assert split_by_file(whole, ["a.py"]) is None
    stranger = AnalyzerResult("bandit", findings=[f])
    assert split_by_file(stranger, ["b.py"]) is None
    transient = AnalyzerResult("semgrep")
    transient.add_file_error("a.py", "semgrep: a.py: Timeout: ...", cacheable=False)
    assert set(split_by_file(transient, ["a.py", "b.py"]) or {}) == {"b.py"}

"""The review pipeline, written once for every platform: Change -> Review.

parser (bot.diff, done by the adapter) -> analyzers (concurrently, on a private workspace)
-> config thresholds -> suppression comments -> changed-lines filter -> reporter (bot.render).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from bot import metrics
from bot.analyzers import (
    Analyzer,
    AnalyzerError,
    AnalyzerResult,
    BanditAnalyzer,
    RuffAnalyzer,
    SemgrepAnalyzer,
)
from bot.analyzers.masking import removed_masking
from bot.cache import ResultCache, run_with_cache
from bot.config import EngineSettings, RepoConfig
from bot.filter import select
from bot.model import Change, FileStatus, Finding, Review, over_limit
from bot.render import Catalog, apply_catalog_severity, build_comments, default_catalog, make_review
from bot.resources import data_path
from bot.suppress import is_suppressed
from bot.workspace import Workspace

log = logging.getLogger(__name__)


class Engine:
    """Holds the analyzers and the catalog; ``await engine.review(change, config)``."""

    def __init__(
        self,
        analyzers: list[Analyzer],
        catalog: Catalog,
        settings: EngineSettings,
        cache: ResultCache | None = None,
    ) -> None:
        self.analyzers = analyzers
        self.catalog = catalog
        self.settings = settings
        self.cache = cache  # per-file analyzer results by content (bot.cache); None: always run

    @classmethod
    def from_settings(
        cls, settings: EngineSettings | None = None, cache: ResultCache | str | Path | None = None
    ) -> Engine:
        """``cache``: a ResultCache, or the path of its SQLite file (the service's
        ``server.data_dir / "cache.sqlite3"``); None runs every analyzer on every file."""
        settings = settings or EngineSettings()
        if cache is not None and not isinstance(cache, ResultCache):
            cache = ResultCache(cache)
        rules = settings.rules_dir or data_path("rules", "semgrep")
        analyzers: list[Analyzer] = [
            BanditAnalyzer(),
            SemgrepAnalyzer(
                Path(rules),
                experimental=settings.semgrep_experimental,
                jobs=settings.semgrep_jobs,
                max_target_bytes=settings.max_file_bytes,  # one size limit for every analyzer
            ),
            RuffAnalyzer(),
        ]
        return cls(analyzers, default_catalog(), settings, cache)

    def wants(self, path: str) -> bool:
        """Whether any analyzer would look at ``path`` (adapters skip fetching the others)."""
        return any(a.wants(path) for a in self.analyzers)

    async def review(self, change: Change, config: RepoConfig, errors: list[str] | None = None) -> Review:
        """Review ``change``; ``errors`` are problems found before (e.g. a broken config file)."""
        started = time.monotonic()
        errors = list(errors or []) + change.errors
        files = []
        for f in change.files:
            if not config.wants_path(f.path):
                continue
            if f.status is FileStatus.BINARY and self.wants(f.path):
                errors.append(f"{f.path}: not reviewed: binary content at a path the analyzers read")
                continue
            if not f.reviewable:
                continue
            if len(f.content or b"") > self.settings.max_file_bytes:
                size = len(f.content or b"")
                errors.append(f"{f.path}: not reviewed: {over_limit(size, self.settings.max_file_bytes)}")
                continue
            files.append(f)
        findings: list[Finding] = []
        timings: dict[str, float] = {}
        with Workspace(files) as ws:
            errors += ws.errors
            enabled = [a for a in self.analyzers if getattr(config.analyzers, a.name, True)]
            jobs = [(a, [p for p in ws.written if a.wants(p)]) for a in enabled]
            contents = {f.path: f.content or b"" for f in files}
            results = await asyncio.gather(
                *(self._run_cached(a, ws.root, paths, contents) for a, paths in jobs if paths)
            )
        for result in results:
            findings += result.findings
            errors += result.errors
            timings[result.tool] = result.seconds
            metrics.ANALYZER_SECONDS.labels(result.tool).observe(result.seconds)
        findings += removed_masking(files)  # masking taken off a log call: seen only in the diff
        by_path = {f.path: f.text().splitlines() for f in files}
        kept = [
            f
            for f in findings
            if config.keeps(apply_catalog_severity(f, self.catalog))
            and not is_suppressed(f, by_path.get(f.path, []))
        ]
        anchored = select(kept, change, config.filter_mode)
        comments = build_comments(anchored, change, self.catalog)
        review = make_review(comments, errors, config.max_inline_comments, reviewed_files=len(files))
        review.timings = timings
        metrics.PIPELINE_SECONDS.observe(time.monotonic() - started)
        return review

    async def _run_cached(
        self, analyzer: Analyzer, root: Path, paths: list[str], contents: dict[str, bytes]
    ) -> AnalyzerResult:
        """``_run`` on the files without a cached result (none: the analyzer is not started)."""
        if self.cache is None or not hasattr(analyzer, "cache_key"):
            return await self._run(analyzer, root, paths)
        return await run_with_cache(
            self.cache, analyzer, paths, contents, lambda missing: self._run(analyzer, root, missing)
        )

    async def _run(self, analyzer: Analyzer, root: Path, paths: list[str]) -> AnalyzerResult:
        started = time.monotonic()
        try:
            result = await analyzer.run(root, paths, self.settings.analyzer_timeout)
        except AnalyzerError as exc:
            log.warning("%s failed: %s", analyzer.name, exc)
            result = AnalyzerResult(analyzer.name, errors=[f"{analyzer.name} {exc}; its checks did not run"])
        except OSError as exc:
            result = AnalyzerResult(
                analyzer.name, errors=[f"{analyzer.name} could not run: {exc}; its checks did not run"]
            )
        result.seconds = time.monotonic() - started
        return result

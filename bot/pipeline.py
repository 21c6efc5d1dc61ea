"""The review pipeline, written once for every platform: Change -> Review.

parser (bot.diff, done by the adapter) -> analyzers (concurrently, on a private workspace)
-> config thresholds -> suppression comments -> changed-lines filter -> reporter (bot.render).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import warnings
from pathlib import Path

from bot import metrics
from bot.analyzers import (
    Analyzer,
    AnalyzerError,
    AnalyzerResult,
    BanditAnalyzer,
    RuffAnalyzer,
    SemgrepAnalyzer,
    traits_of,
)
from bot.analyzers.masking import removed_masking
from bot.analyzers.semgrep_lsp import SemgrepServer
from bot.cache import ResultCache, run_with_cache
from bot.config import EngineSettings, RepoConfig
from bot.filter import select
from bot.focus import focus
from bot.model import Change, ChangedFile, FileStatus, FilterMode, Finding, Review, over_limit
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
        cls,
        settings: EngineSettings | None = None,
        cache: ResultCache | str | Path | None = None,
        warm: bool = False,
    ) -> Engine:
        """``cache``: a ResultCache, or the path of its SQLite file (the service's
        ``server.data_dir / "cache.sqlite3"``); None runs every analyzer on every file.
        ``warm``: a long-running process's engine, which keeps a Semgrep server between reviews
        (``engine.semgrep_warm``); a one-off review is faster with the CLI."""
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
                server=SemgrepServer() if warm and settings.semgrep_warm else None,
            ),
            RuffAnalyzer(),
        ]
        return cls(analyzers, default_catalog(), settings, cache)

    async def close(self) -> None:
        """Stop the warm analyzers' processes (they also stop when this process exits)."""
        for analyzer in self.analyzers:
            close = getattr(analyzer, "close", None)  # optional in the Analyzer protocol
            if close is not None:
                await close()

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
        focused = await asyncio.to_thread(self.focused_copies, files, config.filter_mode)
        with contextlib.ExitStack() as stack:
            ws = stack.enter_context(Workspace(files))
            errors += ws.errors
            # The same paths again, large files focused on the changed lines (bot.focus).
            fws = stack.enter_context(Workspace(focused)) if focused is not files else ws
            enabled = [a for a in self.analyzers if getattr(config.analyzers, a.name, True)]
            runs = []
            for a in enabled:
                paths = [p for p in ws.written if a.wants(p)]
                space, seen = (ws, files) if traits_of(a.name).whole_module else (fws, focused)
                if paths:
                    contents = {f.path: f.content or b"" for f in seen}
                    runs.append(self._run_cached(a, space.root, paths, contents))
            results = await asyncio.gather(*runs)
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

    def focused_copies(self, files: list[ChangedFile], mode: FilterMode) -> list[ChangedFile]:
        """``files`` with each large Python file focused on its hunks (``files`` itself when
        none is). Only where the filter keeps nothing but findings in or on the hunks."""
        limit = self.settings.focus_min_bytes
        if not limit or mode not in (FilterMode.ADDED, FilterMode.DIFF_CONTEXT):
            return files
        out, changed = [], False
        for f in files:
            content = f.content or b""
            copy = None
            if len(content) >= limit and f.path.endswith((".py", ".pyi")) and f.hunks:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # invalid escape sequences and the like
                    copy = focus(content, [range(h.start, h.end + 1) for h in f.hunks])
            out.append(f if copy is None else dataclasses.replace(f, content=copy))
            changed = changed or copy is not None
        return out if changed else files

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

"""Per-file analyzer results, cached by content in a small SQLite file of their own.

What an analyzer reports on one file (its findings and the errors that follow from the file
alone, such as a syntax error) depends only on the file's bytes, its path, and the analyzer's
identity: tool version, options, rules, and the code here that reads its output. The key is a
SHA-256 over all of that, so a lookup can only ever answer for the very same bytes at the same
path under the same analyzer; the entry also stores the content's digest and length, checked
again on every read.

Results are stored before the pipeline's thresholds, suppressions and changed-line filter, so a
cached review filters exactly as an uncached one. A run that failed as a whole (crash, timeout,
an error not tied to one file) stores nothing, and neither does a file with an error that may
not recur (a per-file timeout): only complete results are cached.

The cache is bounded: at most ``max_entries`` rows; past that the least recently used ones go.
Any SQLite problem (a locked, corrupt or unwritable file) turns the cache off for that call and
is logged: the review then runs the analyzers as if nothing were cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.analyzers.base import Analyzer, AnalyzerResult
from bot.model import Finding

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    content_sha256 TEXT NOT NULL,
    content_length INTEGER NOT NULL,
    value TEXT NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_used ON results (used);
"""


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def result_key(analyzer_key: str, path: str, digest: str) -> str:
    h = hashlib.sha256()
    for part in (f"v{SCHEMA_VERSION}", analyzer_key, path, digest):
        h.update(part.encode("utf-8", errors="surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


class FileResult:
    """One analyzer's findings and error lines on one file."""

    __slots__ = ("errors", "findings")

    def __init__(self, findings: list[Finding], errors: list[str]) -> None:
        self.findings = findings
        self.errors = errors

    def dumps(self) -> str:
        return json.dumps(
            {"findings": [f.to_dict() for f in self.findings], "errors": self.errors}, sort_keys=True
        )

    @classmethod
    def loads(cls, text: str) -> FileResult:
        data = json.loads(text)
        return cls([Finding.from_dict(f) for f in data["findings"]], list(data["errors"]))


class ResultCache:
    """``get``/``put`` per (analyzer key, path, content); ``path`` ``":memory:"`` for a private one."""

    def __init__(self, path: str | Path = ":memory:", max_entries: int = 50_000) -> None:
        self.path = str(path)
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._puts_since_prune = 0
        self._open()

    def _open(self) -> None:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # a lost entry after a power cut is only a miss
            db.executescript(_SCHEMA)
            self._db = db
        except sqlite3.Error as exc:
            log.warning("result cache %s unusable, running without it: %s", self.path, exc)
            self._db = None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __len__(self) -> int:
        with self._lock:
            if self._db is None:
                return 0
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def get_many(self, analyzer_key: str, files: dict[str, bytes]) -> dict[str, FileResult]:
        """The cached results among ``files`` ({path: content}), by path."""
        wanted = {}
        for path, content in files.items():
            digest = content_digest(content)
            wanted[result_key(analyzer_key, path, digest)] = (path, digest, len(content))
        found: dict[str, FileResult] = {}
        if not wanted:
            return found
        with self._lock:
            if self._db is None:
                self.misses += len(wanted)
                return found
            try:
                keys = list(wanted)
                rows = []
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    rows += self._db.execute(
                        f"SELECT key, content_sha256, content_length, value FROM results "
                        f"WHERE key IN ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                used = []
                for key, digest, length, value in rows:
                    path, want_digest, want_length = wanted[key]
                    if digest != want_digest or length != want_length:  # never for other bytes
                        continue
                    try:
                        found[path] = FileResult.loads(value)
                    except (ValueError, KeyError, TypeError):
                        continue
                    used.append(key)
                if used:
                    now = time.time()
                    self._db.executemany(
                        "UPDATE results SET used = ? WHERE key = ?", [(now, k) for k in used]
                    )
            except sqlite3.Error as exc:
                log.warning("result cache read failed: %s", exc)
                found = {}
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, analyzer_key: str, results: dict[str, tuple[bytes, FileResult]]) -> None:
        """Store ``results`` ({path: (content, result)}); prune to ``max_entries`` now and then."""
        if not results:
            return
        now = time.time()
        rows = []
        for path, (content, result) in results.items():
            digest = content_digest(content)
            rows.append((result_key(analyzer_key, path, digest), digest, len(content), result.dumps(), now))
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
                self._puts_since_prune += len(rows)
                if self._puts_since_prune >= max(1, self.max_entries // 20):
                    self._prune()
            except sqlite3.Error as exc:
                log.warning("result cache write failed: %s", exc)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    def prune(self) -> int:
        with self._lock:
            if self._db is None:
                return 0
            return self._prune()

    def _prune(self) -> int:
        assert self._db is not None
        self._puts_since_prune = 0
        count = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        excess = count - self.max_entries
        if excess <= 0:
            return 0
        self._db.execute(
            "DELETE FROM results WHERE key IN (SELECT key FROM results ORDER BY used LIMIT ?)", (excess,)
        )
        return excess


def split_by_file(result: AnalyzerResult, paths: list[str]) -> dict[str, FileResult] | None:
    """``result`` (one run on ``paths``) as one complete result per file, or None when it is not
    complete: an error about the whole run, or anything about a path the run was not given.
    Files with an error that may not recur (``transient_errors``) are left out."""
    if result.run_errors():
        return None
    wanted = set(paths)
    if any(f.path not in wanted for f in result.findings):
        return None
    if any(p not in wanted for p in (*result.file_errors, *result.transient_errors)):
        return None
    split = {
        p: FileResult([], list(result.file_errors.get(p, [])))
        for p in paths
        if p not in result.transient_errors
    }
    for finding in result.findings:
        if finding.path in split:
            split[finding.path].findings.append(finding)
    return split


async def run_with_cache(
    cache: ResultCache,
    analyzer: Analyzer,
    paths: list[str],
    contents: dict[str, bytes],
    run: Callable[[list[str]], Awaitable[AnalyzerResult]],
) -> AnalyzerResult:
    """``analyzer`` on ``paths``: cached files from ``cache``, the rest through ``run(missing)``
    (not called when every file is cached); complete results of that run are stored."""
    try:
        key = analyzer.cache_key()  # type: ignore[attr-defined]
    except Exception as exc:  # an unreadable rule file, say: run as if there were no cache
        log.warning("%s: no cache key (%s); running uncached", analyzer.name, exc)
        return await run(paths)
    cached = cache.get_many(key, {p: contents[p] for p in paths})
    missing = [p for p in paths if p not in cached]
    result = AnalyzerResult(analyzer.name)
    for p in paths:
        if p in cached:
            result.findings += cached[p].findings
            for line in cached[p].errors:
                result.add_file_error(p, line)
    if not missing:
        return result
    fresh = await run(missing)
    split = split_by_file(fresh, missing)
    if split is not None:
        cache.put_many(key, {p: (contents[p], r) for p, r in split.items()})
    result.findings += fresh.findings
    result.errors += fresh.errors
    for p, lines in fresh.file_errors.items():
        result.file_errors.setdefault(p, []).extend(lines)
    for p, lines in fresh.transient_errors.items():
        result.transient_errors.setdefault(p, []).extend(lines)
    result.seconds = fresh.seconds
    return result

"""Where triage decisions are kept: behind :class:`TriageStore`, so another backend (Redis, for a
service scaled out over several hosts) is one more class; :class:`SqliteTriageStore` keeps them
in ``triage.sqlite3`` in the data directory, next to the queue.

Two tables: ``ignores`` (what is in force: one row per scope, key and fingerprint) and ``audit``
(append-only: every decision with who, when, fingerprint and reason, never updated or deleted).
``commands`` remembers which command comments were handled, so a redelivered webhook or a
re-read comment list answers a command once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, fields
from pathlib import Path
from typing import Protocol, TypeVar

from bot.triage import Ignore

T = TypeVar("T")
_COLUMNS = ", ".join(f'"{f.name}"' for f in fields(Ignore))  # quoted: "when" is an SQL keyword
_MARKS = ", ".join("?" for _ in fields(Ignore))
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ignores ({_COLUMNS}, PRIMARY KEY (scope, key, fingerprint));
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, {_COLUMNS});
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, handled REAL NOT NULL);
"""


class TriageStore(Protocol):
    async def add(self, decision: Ignore) -> bool:
        """Keep ``decision`` and audit it; False when it was already in force (then only audited)."""

    async def decisions(self, change_key: str, repository_key: str) -> list[Ignore]:
        """What is ignored on this change: its own decisions and the repository's."""

    async def audit(self) -> list[Ignore]:
        """Every decision ever taken, oldest first."""

    async def claim_command(self, command_id: str) -> bool:
        """True the first time ``command_id`` (a platform's comment id) is claimed, then False."""

    async def handled(self, command_id: str) -> bool:
        """Whether ``command_id`` was claimed."""

    def close(self) -> None: ...


class SqliteTriageStore:
    """SQLite in WAL mode; each call is one short transaction in a thread (like the queue)."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    async def add(self, decision: Ignore) -> bool:
        row = astuple(decision)

        def op() -> bool:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"INSERT INTO audit ({_COLUMNS}) VALUES ({_MARKS})", row)
                cur = self._db.execute(f"INSERT OR IGNORE INTO ignores ({_COLUMNS}) VALUES ({_MARKS})", row)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

        return await self._run(op)

    async def decisions(self, change_key: str, repository_key: str) -> list[Ignore]:
        def op() -> list[Ignore]:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM ignores WHERE (scope = 'change' AND key = ?) OR (scope = 'repository' AND key = ?)"
                ' ORDER BY "when"',
                (change_key, repository_key),
            ).fetchall()
            return [Ignore(*row) for row in rows]

        return await self._run(op)

    async def audit(self) -> list[Ignore]:
        def op() -> list[Ignore]:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY id").fetchall()
            return [Ignore(*row) for row in rows]

        return await self._run(op)

    async def claim_command(self, command_id: str) -> bool:
        def op() -> bool:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO commands (id, handled) VALUES (?, ?)", (command_id, time.time())
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def handled(self, command_id: str) -> bool:
        def op() -> bool:
            return (
                self._db.execute("SELECT 1 FROM commands WHERE id = ?", (command_id,)).fetchone() is not None
            )

        return await self._run(op)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(data_dir: Path | None, queue_url: str | None = None) -> TriageStore:
    """The service's triage store: in Redis with ``server.queue_url`` (a fleet shares it, see
    bot.triage_store_redis), else SQLite in the data directory; neither: one in memory, for a
    platform built without a data directory."""
    if queue_url:
        from bot.triage_store_redis import RedisTriageStore

        return RedisTriageStore(queue_url)
    return SqliteTriageStore(":memory:" if data_dir is None else data_dir / "triage.sqlite3")

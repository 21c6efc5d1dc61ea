"""Fetching a change's files, written once: which changed files are fetched at all, what is named
as not reviewed and why, and how many requests run at once. The adapters say only how a file is
listed and fetched on their platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from bot.model import ChangedFile, FileStatus, over_limit
from bot.platforms.base import NotReviewable

CONCURRENCY = 8  # file requests in flight per change


@dataclass(frozen=True)
class FileEntry:
    """One changed file as the platform lists it."""

    path: str
    status: FileStatus
    old_path: str | None = None
    size: int | None = None  # bytes at the head, when the listing says
    binary: bool = False  # the listing says the content is binary
    patch: str | None = None  # the platform's unified diff of the file, when it gives one


def unsafe_path(path: str) -> bool:
    """A name no checkout could hold: absolute, or with an empty, ``.`` or ``..`` segment."""
    return path.startswith("/") or any(seg in ("", ".", "..") for seg in path.split("/"))


async def load_files(
    entries: Iterable[FileEntry],
    wanted: Callable[[str], bool],
    fetch: Callable[[FileEntry], Awaitable[ChangedFile]],
    placeholder: Callable[[FileEntry], ChangedFile],
    max_file_bytes: int,
) -> tuple[list[ChangedFile], list[str]]:
    """The changed files, in listing order, and the lines naming those not reviewed.

    Deleted and binary files and files nobody wants are not fetched; names that could escape a
    checkout and files over ``max_file_bytes`` are named and not fetched; ``fetch`` raises
    :class:`NotReviewable` for what it finds is not a reviewable file. A file not fetched keeps
    what ``placeholder`` knows of its lines (for placement) and has nothing to analyze."""
    errors: list[str] = []
    semaphore = asyncio.Semaphore(CONCURRENCY)

    def not_reviewed(entry: FileEntry, why: object) -> ChangedFile:
        errors.append(f"{entry.path}: not reviewed: {why}")
        return placeholder(entry)

    async def build(entry: FileEntry) -> ChangedFile:
        if entry.status is FileStatus.DELETED:
            return ChangedFile(entry.path, entry.status, old_path=entry.old_path)
        if entry.binary:
            return ChangedFile(entry.path, FileStatus.BINARY, old_path=entry.old_path)  # the engine names it
        if not wanted(entry.path):
            return placeholder(entry)
        if unsafe_path(entry.path):
            return not_reviewed(entry, "unsafe file name")
        if entry.size is not None and entry.size > max_file_bytes:
            return not_reviewed(entry, over_limit(entry.size, max_file_bytes))
        async with semaphore:
            try:
                return await fetch(entry)
            except NotReviewable as exc:
                return not_reviewed(entry, exc)

    files = await asyncio.gather(*(build(entry) for entry in entries))
    return list(files), errors

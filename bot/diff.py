"""Parser stage: unified diffs in, per-file changed lines out (no I/O).

Every platform describes a change differently (a `git diff`, GitHub's per-file ``patch``,
Gerrit's DiffInfo, or two blobs to compare); all of them end up here so that "which lines did
this change touch" is computed in one place, by unidiff.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from bot.model import ChangedFile, FileStatus, Hunk


class DiffError(ValueError):
    """A diff that cannot be parsed."""


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: FileStatus
    old_path: str | None
    added_lines: frozenset[int]
    hunks: tuple[Hunk, ...]
    removed_text: tuple[str, ...] = ()

    def changed_file(
        self, content: bytes | None, status: FileStatus | None = None, old_path: str | None = None
    ) -> ChangedFile:
        """The change model's file: these lines with the head ``content`` (None: not fetched)."""
        return ChangedFile(
            self.path,
            status or self.status,
            content,
            old_path or self.old_path,
            self.added_lines,
            self.hunks,
            self.removed_text,
        )


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse_unified_diff(text: str) -> list[FileDiff]:
    """Parse a (git) unified diff, including renames, mode-only changes and binary files."""
    try:
        patch = PatchSet(text.splitlines(keepends=True))
    except UnidiffParseError as exc:
        raise DiffError(f"cannot parse diff: {exc}") from exc
    result = []
    for pf in patch:
        new_path = _strip_prefix(pf.target_file)
        old_path = _strip_prefix(pf.source_file)
        header = str(pf.patch_info or "")
        # Decide "deleted" from git's header, not from unidiff's hunk arithmetic: a file emptied
        # to zero lines has a ``+0,0`` hunk but still exists.
        if "\ndeleted file mode" in "\n" + header or new_path is None:
            status, path = FileStatus.DELETED, old_path or pf.path
        elif pf.is_binary_file:
            status, path = FileStatus.BINARY, new_path
        elif pf.is_added_file or old_path is None:
            status, path = FileStatus.ADDED, new_path
        elif "\ncopy from " in "\n" + header:
            status, path = FileStatus.COPIED, new_path
        elif pf.is_rename:
            status, path = FileStatus.RENAMED, new_path
        else:
            status, path = FileStatus.MODIFIED, new_path
        added, hunks, removed = _lines_of(pf)
        result.append(
            FileDiff(
                path=path,
                status=status,
                old_path=old_path if status in (FileStatus.RENAMED, FileStatus.COPIED) else None,
                added_lines=added,
                hunks=hunks,
                removed_text=removed,
            )
        )
    return result


def _lines_of(pf) -> tuple[frozenset[int], tuple[Hunk, ...], tuple[str, ...]]:
    added: set[int] = set()
    hunks = []
    removed: list[str] = []
    for hunk in pf:
        added.update(line.target_line_no for line in hunk if line.is_added)
        removed.extend(line.value.rstrip("\r\n") for line in hunk if line.is_removed)
        if hunk.target_length:
            hunks.append(Hunk(hunk.target_start, hunk.target_start + hunk.target_length - 1))
    return frozenset(added), tuple(hunks), tuple(removed)


def parse_file_patch(path: str, patch: str) -> FileDiff:
    """Parse one file's hunks without headers, as GitHub's pull-request ``patch`` field carries them."""
    header = f"--- a/{path}\n+++ b/{path}\n"
    diffs = parse_unified_diff(header + patch + ("" if patch.endswith("\n") else "\n"))
    if not diffs:
        return FileDiff(path, FileStatus.MODIFIED, None, frozenset(), ())
    return diffs[0]


def diff_contents(path: str, old: bytes | None, new: bytes, context: int = 3) -> FileDiff:
    """Changed lines of ``new`` against ``old`` (``None``: the file is new), by diffing the blobs.

    Used where a platform gives two versions instead of a diff (Gerrit, large GitHub files).
    """
    old_lines = _split(old) if old is not None else []
    new_lines = _split(new)
    text = "".join(
        _terminated(line)
        for line in difflib.unified_diff(
            old_lines, new_lines, f"a/{path}" if old is not None else "/dev/null", f"b/{path}", n=context
        )
    )
    if not text:
        return FileDiff(path, FileStatus.MODIFIED, None, frozenset(), ())
    diffs = parse_unified_diff(text)
    status = FileStatus.ADDED if old is None else FileStatus.MODIFIED
    fd = diffs[0]
    return FileDiff(path, status, None, fd.added_lines, fd.hunks, fd.removed_text)


def _split(blob: bytes) -> list[str]:
    # Diff on text lines without their terminators so CRLF vs LF and a missing final newline
    # never shift line numbers.
    return blob.decode("utf-8", errors="replace").splitlines()


def _terminated(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"

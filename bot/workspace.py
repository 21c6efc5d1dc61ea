"""A private temporary directory holding only the changed files' head versions.

Analyzers read files, not memory; this is where the change's files are written for them.
Paths come from the change under review, i.e. from an untrusted author: an absolute path, a
``..`` component or a symlink must never make us write outside the workspace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from bot.model import ChangedFile


class UnsafePathError(ValueError):
    pass


def safe_relative(path: str) -> PurePosixPath:
    """Validate a repo-relative path: no absolute paths, no ``..``, no NUL, not empty."""
    if not path or "\x00" in path or "\\" in path:
        raise UnsafePathError(f"unsafe path {path!r}")
    # Check the raw components: PurePosixPath would quietly normalise "a//b" and "./a".
    if path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        raise UnsafePathError(f"unsafe path {path!r}")
    return PurePosixPath(path)


class Workspace:
    """Context manager: ``with Workspace(files) as ws: ws.root / path``."""

    def __init__(self, files: list[ChangedFile]) -> None:
        self.files = files
        self.root = Path(tempfile.mkdtemp(prefix="patchwarden-"))
        os.chmod(self.root, 0o700)
        self.written: list[str] = []
        self.errors: list[str] = []

    def __enter__(self) -> Workspace:
        for f in self.files:
            if not f.reviewable:
                continue
            try:
                self._write(f.path, f.content or b"")
                self.written.append(f.path)
            except (UnsafePathError, OSError) as exc:
                self.errors.append(f"{f.path}: not reviewed: {exc}")
        return self

    def _write(self, path: str, content: bytes) -> None:
        rel = safe_relative(path)
        parent = self.root
        for part in rel.parts[:-1]:
            parent = parent / part
            if parent.is_symlink():
                raise UnsafePathError(f"symlink in path {path!r}")
            parent.mkdir(mode=0o700, exist_ok=True)
        # O_NOFOLLOW|O_EXCL: never follow or overwrite anything already there.
        fd = os.open(parent / rel.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

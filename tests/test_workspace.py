"""The workspace never writes outside itself, whatever paths a change carries."""

from __future__ import annotations

import pytest

from bot.model import ChangedFile, FileStatus
from bot.workspace import UnsafePathError, Workspace, safe_relative


@pytest.mark.parametrize(
    "path", ["../evil.py", "/etc/passwd", "a/../../evil.py", "a//b.py", "./x.py", "", "a\x00b", "a\\..\\b"]
)
def test_unsafe_paths_are_refused(path):
    with pytest.raises(UnsafePathError):
        safe_relative(path)


def test_workspace_writes_only_safe_files_and_cleans_up(tmp_path):
    outside = tmp_path / "evil.py"
    files = [
        ChangedFile("pkg/ok.py", FileStatus.ADDED, b"x = 1\n"),
        ChangedFile("../" * 12 + str(outside).lstrip("/"), FileStatus.ADDED, b"pwned"),
        ChangedFile("gone.py", FileStatus.DELETED),
        ChangedFile("pkg/ok.py/child.py", FileStatus.ADDED, b"y"),  # a file used as a directory
    ]
    with Workspace(files) as ws:
        root = ws.root
        assert ws.written == ["pkg/ok.py"]
        assert (root / "pkg/ok.py").read_bytes() == b"x = 1\n"
        assert len(ws.errors) == 2 and all("not reviewed" in e for e in ws.errors)
        assert (root.stat().st_mode & 0o777) == 0o700
    assert not outside.exists()
    assert not root.exists()

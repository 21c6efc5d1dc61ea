"""The parser stage on real `git diff` output: every file status and the awkward cases."""

from __future__ import annotations

from bot.diff import diff_contents, parse_file_patch, parse_unified_diff
from bot.gitlocal import change_from_git
from bot.model import FileStatus, Hunk

SEVEN = "".join(f"line {i}\n" for i in range(1, 8))


def test_every_status_and_edge_case(make_repo):
    repo = make_repo()
    repo.commit(
        {
            "keep.py": SEVEN,
            "moved.py": SEVEN,
            "copied_src.py": SEVEN * 3,
            "gone.py": "x = 1\n",
            "emptied.py": "a = 1\nb = 2\n",
            "mode.sh": "echo hi\n",
            "blob.bin": b"\x00\x01\x02",
        },
        "base",
    )
    (repo.root / "mode.sh").chmod(0o755)
    (repo.root / "dir with space").mkdir()
    repo.git("mv", "moved.py", "dir with space/mövéd.py")
    repo.commit(
        {
            "keep.py": SEVEN.replace("line 4\n", "line four\n"),
            "dir with space/mövéd.py": SEVEN + "line 8\n",
            # git reports copies of files the commit also modifies (without --find-copies-harder)
            "copied_src.py": SEVEN * 3 + "src\n",
            "copied_dst.py": SEVEN * 3 + "extra\n",
            "gone.py": None,
            "emptied.py": "",
            "mode.sh": "echo hi\n",
            "blob.bin": b"\x00\x03\x04",
            "latin1.py": b"name = 'caf\xe9'\r\nother = 1\r\n",
            "no_eol.py": "x = 1",
        },
        "head",
    )
    change = change_from_git(repo.root)
    files = {f.path: f for f in change.files}

    assert files["keep.py"].status is FileStatus.MODIFIED
    assert files["keep.py"].added_lines == {4}
    assert files["keep.py"].hunks == (Hunk(1, 7),)

    moved = files["dir with space/mövéd.py"]
    assert moved.status is FileStatus.RENAMED and moved.old_path == "moved.py"
    assert moved.added_lines == {8}
    assert moved.content == (SEVEN + "line 8\n").encode()

    copied = files["copied_dst.py"]
    assert copied.status is FileStatus.COPIED and copied.old_path == "copied_src.py"
    assert copied.added_lines == {22}

    assert files["gone.py"].status is FileStatus.DELETED and not files["gone.py"].reviewable

    # unidiff alone would call a file emptied to zero lines "removed": it still exists.
    assert files["emptied.py"].status is FileStatus.MODIFIED
    assert files["emptied.py"].content == b"" and files["emptied.py"].added_lines == frozenset()

    assert files["mode.sh"].status is FileStatus.MODIFIED and files["mode.sh"].added_lines == frozenset()
    assert files["blob.bin"].status is FileStatus.BINARY and files["blob.bin"].content is None

    latin = files["latin1.py"]
    assert latin.status is FileStatus.ADDED and latin.added_lines == {1, 2}
    assert latin.content == b"name = 'caf\xe9'\r\nother = 1\r\n"  # bytes kept exactly, CRLF included

    assert files["no_eol.py"].added_lines == {1} and files["no_eol.py"].content == b"x = 1"


def test_github_patch_without_headers():
    patch = "@@ -1,3 +1,4 @@\n a\n+b\n c\n d\n@@ -10,3 +11,3 @@\n x\n-old(y)\n+y\n z"
    fd = parse_file_patch("pkg/m.py", patch)
    assert fd.added_lines == {2, 12}
    assert fd.hunks == (Hunk(1, 4), Hunk(11, 13))
    assert fd.removed_text == ("old(y)",)
    changed = fd.changed_file(b"content")
    assert (changed.path, changed.removed_text, changed.added_lines) == ("pkg/m.py", ("old(y)",), {2, 12})


def test_diff_contents_handles_crlf_and_missing_final_newline():
    old = b"a\r\nb\r\nc"
    new = b"a\r\nB\r\nc\r\nd\r\n"
    fd = diff_contents("f.py", old, new)
    assert fd.added_lines == {2, 4}
    assert fd.removed_text == ("b",)  # no "\r" left on the removed text
    assert diff_contents("f.py", None, b"x\ny\n").status is FileStatus.ADDED
    assert diff_contents("f.py", b"same\n", b"same\n").added_lines == frozenset()


def test_garbage_is_an_empty_diff_not_a_crash():
    assert parse_unified_diff("this is not a diff\n") == []

"""Local adapter: a Change from a git range in a working copy (for ``patchwarden check``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.diff import DiffError, parse_unified_diff
from bot.model import Change, FileStatus

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(RuntimeError):
    pass


def git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "-c", "core.quotepath=false", *args],
            input=input, capture_output=True, check=False,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise GitError("git is not installed") from exc
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def default_base(repo: Path, head: str) -> str:
    """The merge-base with the upstream branch; else the head's parent; else the empty tree."""
    try:
        upstream = (
            git(repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}").decode().strip()
        )
        return git(repo, "merge-base", upstream, head).decode().strip()
    except GitError:
        pass
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{head}~1").decode().strip()
    except GitError:
        return EMPTY_TREE


def read_blobs(repo: Path, rev: str, paths: list[str]) -> dict[str, bytes]:
    """Contents of ``rev:path`` for each path, in one ``git cat-file --batch`` call."""
    if not paths:
        return {}
    request = "".join(f"{rev}:{p}\n" for p in paths).encode()
    out = git(repo, "cat-file", "--batch", input=request)
    blobs: dict[str, bytes] = {}
    pos = 0
    for path in paths:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if header[-1] == b"missing":
            continue
        size = int(header[2])
        blobs[path] = out[pos : pos + size]
        pos += size + 1
    return blobs


def resolve_commit(repo: Path, rev: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except GitError:
        raise GitError(f"{rev!r} is not a commit in {repo}") from None


def change_from_git(
    repo: Path, base: str | None = None, head: str | None = None, staged: bool = False
) -> Change:
    """The change ``base..head``; with ``staged``, what is staged in the index against ``base``
    (default HEAD; the empty tree before the first commit), as a pre-commit hook sees it. The
    head of a staged change is ``""``: ``":path"`` names the file in the index for git."""
    repo = Path(repo)
    git(repo, "rev-parse", "--git-dir")
    if staged:
        if head:
            raise GitError("--staged reviews the index: it takes no --head")
        head_sha, head_rev = "", ""
        if base is None:
            try:
                base = resolve_commit(repo, "HEAD")
            except GitError:
                base = EMPTY_TREE
    else:
        head_sha = head_rev = resolve_commit(repo, head or "HEAD")
        base = base or default_base(repo, head_sha)
    base_sha = base if base == EMPTY_TREE else resolve_commit(repo, base)
    range_args = ["--cached", base_sha] if staged else [base_sha, head_sha]
    text = git(
        repo,
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--find-renames",
        "--find-copies",
        "--unified=3",
        *range_args,
    )
    try:
        diffs = parse_unified_diff(text.decode("utf-8", errors="surrogateescape"))
    except DiffError as exc:
        raise GitError(str(exc)) from exc
    wanted = [d.path for d in diffs if d.status not in (FileStatus.DELETED, FileStatus.BINARY)]
    blobs = read_blobs(repo, head_rev, wanted)
    files = [
        d.changed_file(blobs.get(d.path) if d.status not in (FileStatus.DELETED, FileStatus.BINARY) else None)
        for d in diffs
    ]
    return Change(files=files, base=base_sha, head=head_sha)


def read_file_at(repo: Path, rev: str, path: str) -> bytes | None:
    """The bytes of the regular file ``path`` at ``rev``, or None when there is none.

    A symlink is followed inside the tree (as GitHub's contents API does); one that leaves the
    tree, dangles or loops, a directory, a submodule or a missing path all give None, so nothing
    outside the revision (the working tree included) is ever read.
    """
    out = git(repo, "cat-file", "--batch-check", "--follow-symlinks", input=f"{rev}:{path}\n".encode())
    fields = out.split(b"\n", 1)[0].split()
    if len(fields) != 3 or fields[1] != b"blob":
        return None
    return git(repo, "cat-file", "blob", fields[0].decode())


def repo_config_at(repo: Path, rev: str, names: tuple[str, ...]) -> tuple[str | None, str]:
    """The first of ``names`` that is a file at ``rev``: (text, name), else (None, "")."""
    for name in names:
        blob = read_file_at(repo, rev, name)
        if blob is not None:
            return blob.decode("utf-8", errors="replace"), name
    return None, ""

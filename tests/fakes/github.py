"""A strict fake of the parts of GitHub's REST API that Patchwarden talks to.

The fake is a real HTTP server (aiohttp) on ``127.0.0.1`` with an ephemeral port, so the bot's
own HTTP client, auth, retry and pagination code run unchanged against it::

    private_pem, _ = generate_app_key()
    async with FakeGitHub(app_id=42, app_private_key_pem=private_pem) as gh:
        pull = gh.add_pull_from_payload(payload, base_files={...}, head_files={...})
        gh.set_branch_file("Codertocat", "Hello-World", "master", ".patchwarden.yaml", b"...")
        ...  # run the bot with PATCHWARDEN_GITHUB_API_URL=gh.url
        assert gh.review_comments[0]["line"] == 3

It is *strict*: it rejects what GitHub rejects (bad credentials, JWTs that are too long-lived,
installation tokens used on another installation's repository, review comments outside the diff,
check runs completed without a conclusion, ...), with GitHub's status codes and, where they are
known, GitHub's error wording. State lives in plain Python objects that tests set up and inspect;
the recorders (:attr:`FakeGitHub.reviews`, :attr:`FakeGitHub.review_comments`, ...) are lists of
dicts appended to as requests arrive.

The pull request files and patches are computed here from the base and head file contents the
test provides (``difflib`` with 3 lines of context, git's hunk headers and markers), and the same
hunks are used to validate review comments, so a bot that comments only on lines it found in the
``patch`` it was served always passes validation.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import difflib
import hashlib
import hmac
import http
import itertools
import json
import math
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.faults import WRITES, Faults
from tests.fakes.github_graphql import GraphQLEndpoint

__all__ = [
    "CHECK_RUN_CONCLUSIONS",
    "REACTION_CONTENTS",
    "DiffHunk",
    "DiffRow",
    "FakeGitHub",
    "FakePull",
    "FileDiff",
    "Submodule",
    "Symlink",
    "compute_files",
    "generate_app_key",
    "git_blob_sha",
]

DOCS_URL = "https://docs.github.com/rest"
REVIEW_DOCS_URL = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
CHECK_RUN_DOCS_URL = "https://docs.github.com/rest/checks/runs#create-a-check-run"
RATE_LIMIT_DOCS_URL = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
CONTENTS_DOCS_URL = "https://docs.github.com/rest/repos/contents#get-repository-content"
BLOB_DOCS_URL = "https://docs.github.com/rest/git/blobs#get-a-blob"
#: What a classic PAT / OAuth token gets from the check-run endpoints ("To create a check run, you
#: must use a GitHub App"; "OAuth apps and personal access tokens (classic) cannot use this endpoint").
CHECK_RUN_APP_ONLY_MESSAGE = "You must authenticate via a GitHub App."
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)

#: Conclusions an app may set on a check run (``stale`` is GitHub's alone).
CHECK_RUN_CONCLUSIONS = frozenset(
    {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)
#: Statuses an app may set (``waiting``, ``requested`` and ``pending`` are GitHub Actions' alone).
CHECK_RUN_STATUSES = frozenset({"queued", "in_progress", "completed"})
#: The reaction ``content`` values GitHub accepts.
REACTION_CONTENTS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
#: GitHub's limit, in characters and in bytes, on a check run's ``output.summary`` and ``output.text``.
CHECK_OUTPUT_LIMIT = 65535
#: GitHub's limit on annotations per check run create/update request.
CHECK_ANNOTATIONS_PER_REQUEST = 50
#: Files larger than this are served by the contents API without ``content`` (``encoding: none``).
CONTENTS_JSON_MAX_BYTES = 1024 * 1024
#: Neither the contents API nor the blobs API serves files larger than this ("up to 100 MB").
BLOB_MAX_BYTES = 100 * 1024 * 1024
#: Documented secondary limits on content-creating requests: (window seconds, requests).
CONTENT_CREATION_LIMITS = ((60, 80), (3600, 500))
#: GitHub lists at most this many files of a pull request.
PULL_FILES_LIMIT = 3000
#: Longest lifetime GitHub accepts for an app JWT, in seconds.
JWT_MAX_LIFETIME = 600

_CONTEXT_LINES = 3
_FUNC_LINE_MAX = 80  # git's hunk-header function context is cut at 80 bytes
_BINARY_SNIFF_BYTES = 8000  # git looks for a NUL byte in the first 8000 bytes
_RENAME_THRESHOLD = 0.5
_JWT_PATH = re.compile(r"^/app(?:/|$)|^/repos/[^/]+/[^/]+/installation/?$")
_TOKEN_ALPHABET = string.ascii_letters + string.digits
# Set by the middleware for the handler of the request being served (same task).
_JWT_CLAIMS: ContextVar[dict[str, Any]] = ContextVar("fake_github_jwt_claims")
_RECORDED_HEADERS = (
    "Authorization",
    "Accept",
    "User-Agent",
    "Content-Type",
    "X-GitHub-Api-Version",
    "If-None-Match",
)

Side = Literal["LEFT", "RIGHT"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def generate_app_key() -> tuple[bytes, bytes]:
    """A fresh RSA 2048 key pair for a fake GitHub App: ``(private_pem, public_pem)``.

    The private key is PKCS#1 (``BEGIN RSA PRIVATE KEY``), like the ``.pem`` GitHub lets app
    owners download; the public key is a SubjectPublicKeyInfo PEM.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def git_blob_sha(content: bytes) -> str:
    """The git object id of a blob with this content (what GitHub reports as a file's ``sha``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode().rstrip("=")


def _to_sentence(parts: list[str]) -> str:
    """Join messages the way GitHub (Rails' ``to_sentence``) does: ``a, b, and c``."""
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def _is_binary(content: bytes) -> bool:
    return b"\0" in content[:_BINARY_SNIFF_BYTES]


def _split_lines(content: bytes) -> list[bytes]:
    """Split on ``\\n`` only (as git does), keeping the terminator; a last line may lack one."""
    parts = content.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _ApiError(Exception):
    """Raised by handlers; the middleware turns it into GitHub's JSON error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        documentation_url: str = DOCS_URL,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": documentation_url}
        if errors is not None:
            self.body["errors"] = errors
        self.body["status"] = str(status)
        self.headers = dict(headers or {})


def _not_found() -> _ApiError:
    return _ApiError(404, "Not Found")


def _bad_credentials() -> _ApiError:
    return _ApiError(401, "Bad credentials")


def _invalid_request(detail: str, documentation_url: str = DOCS_URL) -> _ApiError:
    """GitHub's schema-validation failure: 422 ``Invalid request.\\n\\n<detail>``."""
    return _ApiError(422, f"Invalid request.\n\n{detail}", documentation_url=documentation_url)


def _missing(name: str, documentation_url: str = DOCS_URL) -> _ApiError:
    return _invalid_request(f'"{name}" wasn\'t supplied.', documentation_url)


def _wrapped_base64(content: bytes) -> str:
    """Base64 as GitHub serves it in ``content``: lines of 60 characters, each ending in ``\\n``."""
    encoded = base64.b64encode(content).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


def _resolve_link(link_path: str, target: str) -> str | None:
    """The tree path a symlink's relative ``target`` names, or ``None`` if it leaves the tree."""
    if target.startswith("/"):
        return None
    parts: list[str] = link_path.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None


def _too_large(resource: str, documentation_url: str) -> _ApiError:
    """Over 100 MB: "This endpoint is not supported." (the fake's wording and error code)."""
    return _ApiError(
        403,
        f"This API returns blobs up to {BLOB_MAX_BYTES // (1024 * 1024)} MB in size. The requested {resource} is too large to fetch via the API.",
        errors=[{"resource": "Blob", "field": "data", "code": "too_large"}],
        documentation_url=documentation_url,
    )


# --------------------------------------------------------------------------------------------
# Tree entries that are not regular files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symlink:
    """A symbolic link (git mode 120000) in a tree; use it as a value in a files mapping.

    Its git blob is the target path (no trailing newline), which is what a diff of it shows. The
    contents API follows it when the target is a regular file of the same tree and describes it
    (``type: symlink``, ``target``) otherwise.
    """

    target: str

    @property
    def blob(self) -> bytes:
        return self.target.encode()


@dataclass(frozen=True)
class Submodule:
    """A submodule (gitlink, mode 160000) pinned at commit ``sha`` of ``url``."""

    sha: str
    url: str = "https://github.com/octocat/Spoon-Knife.git"

    @property
    def blob(self) -> bytes:
        """What ``git diff`` shows for a gitlink."""
        return f"Subproject commit {self.sha}\n".encode()


TreeValue = bytes | Symlink | Submodule


def _diff_bytes(value: TreeValue | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.blob


def _entry_sha(value: TreeValue) -> str:
    """The object id git lists for a tree entry: a commit id for a gitlink, a blob id otherwise."""
    if isinstance(value, Submodule):
        return value.sha
    return git_blob_sha(_diff_bytes(value) or b"")


# --------------------------------------------------------------------------------------------
# Diffs: what GET /pulls/{n}/files serves, and what review comments are validated against
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    """One line of a patch below a hunk header.

    ``kind`` is ``" "`` (context), ``"+"``, ``"-"`` or ``"\\\\"`` (the ``\\ No newline at end of
    file`` marker, which has no line numbers). ``text`` is the line as it appears in the patch.
    """

    kind: str
    text: str
    old_line: int | None
    new_line: int | None


@dataclass(frozen=True)
class DiffHunk:
    """One ``@@ -a,b +c,d @@`` hunk of a file's patch."""

    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    rows: tuple[DiffRow, ...]

    def lines(self, side: Side) -> frozenset[int]:
        """Lines a review comment may target on ``side``: RIGHT = added + context, LEFT = deleted + context."""
        if side == "RIGHT":
            return frozenset(r.new_line for r in self.rows if r.new_line is not None)
        return frozenset(r.old_line for r in self.rows if r.old_line is not None)

    def row_index(self, side: Side, line: int) -> int | None:
        for index, row in enumerate(self.rows):
            if (side == "RIGHT" and row.new_line == line) or (side == "LEFT" and row.old_line == line):
                return index
        return None

    @property
    def text(self) -> str:
        return "\n".join([self.header, *(row.text for row in self.rows)])


@dataclass(frozen=True)
class FileDiff:
    """One entry of a pull request's files, computed from base and head contents."""

    filename: str
    status: Literal["added", "removed", "modified", "renamed"]
    sha: str
    additions: int
    deletions: int
    binary: bool
    hunks: tuple[DiffHunk, ...]
    previous_filename: str | None = None
    old_sha: str | None = None

    @property
    def changes(self) -> int:
        return self.additions + self.deletions

    @property
    def patch(self) -> str | None:
        """The hunks as GitHub serves them in ``patch`` (no ``---``/``+++`` lines, no final newline)."""
        if self.binary or not self.hunks:
            return None
        return "\n".join(hunk.text for hunk in self.hunks)

    def hunk_of(self, side: Side, line: int) -> int | None:
        """Index of the hunk in which ``line`` may be commented on ``side``, or ``None``."""
        for index, hunk in enumerate(self.hunks):
            if line in hunk.lines(side):
                return index
        return None

    def position_of(self, side: Side, line: int) -> int | None:
        """The deprecated diff ``position`` (1 = the line below the first ``@@``) of a line."""
        position = 0
        for index, hunk in enumerate(self.hunks):
            if index:
                position += 1  # a later hunk's header counts as a line
            row_index = hunk.row_index(side, line)
            if row_index is not None:
                return position + row_index + 1
            position += len(hunk.rows)
        return None

    def row_at_position(self, position: int) -> DiffRow | None:
        """The patch row at a deprecated ``position``; ``None`` if out of range or a header/marker."""
        current = 0
        for index, hunk in enumerate(self.hunks):
            if index:
                current += 1
                if current == position:
                    return None
            if position <= current + len(hunk.rows):
                row = hunk.rows[position - current - 1] if position > current else None
                return row if row is not None and row.kind != "\\" else None
            current += len(hunk.rows)
        return None

    def diff_hunk(self, side: Side, line: int) -> str:
        """What GitHub puts in a review comment's ``diff_hunk``: the hunk up to the commented line."""
        index = self.hunk_of(side, line)
        if index is None:
            return ""
        hunk = self.hunks[index]
        row_index = hunk.row_index(side, line)
        assert row_index is not None
        return "\n".join([hunk.header, *(row.text for row in hunk.rows[: row_index + 1])])


def _unified_range(start: int, stop: int) -> str:
    length = stop - start
    if length == 1:
        return str(start + 1)
    if length == 0:
        return f"{start},0"
    return f"{start + 1},{length}"


def _func_context(old_lines: list[bytes], start: int, limit: int) -> bytes | None:
    """git's default hunk-header context: the nearest line above the hunk starting with [A-Za-z_$]."""
    for index in range(start, limit, -1):
        if index < 0:
            break
        line = old_lines[index]
        first = line[:1]
        if first and (first.isalpha() or first in (b"_", b"$")):
            return line[:_FUNC_LINE_MAX].rstrip()
    return None


def _rows_for(kind: str, line: bytes, old: int | None, new: int | None) -> list[DiffRow]:
    text = line[:-1] if line.endswith(b"\n") else line
    rows = [DiffRow(kind, kind + text.decode("utf-8", "replace"), old, new)]
    if not line.endswith(b"\n"):
        rows.append(DiffRow("\\", "\\ No newline at end of file", None, None))
    return rows


def _make_hunks(old: bytes, new: bytes) -> tuple[DiffHunk, ...]:
    if old == new:
        return ()
    a, b = _split_lines(old), _split_lines(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks: list[DiffHunk] = []
    func = b""
    search_limit = -1
    for group in matcher.get_grouped_opcodes(_CONTEXT_LINES):
        if all(tag == "equal" for tag, *_ in group):
            continue
        i1, j1 = group[0][1], group[0][3]
        i2, j2 = group[-1][2], group[-1][4]
        found = _func_context(a, i1 - 1, search_limit)
        search_limit = i1 - 1
        if found is not None:
            func = found  # like git, a hunk with no new match reuses the previous context
        header = f"@@ -{_unified_range(i1, i2)} +{_unified_range(j1, j2)} @@"
        if func:
            header += " " + func.decode("utf-8", "replace")
        rows: list[DiffRow] = []
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                for k in range(x2 - x1):
                    rows += _rows_for(" ", a[x1 + k], x1 + k + 1, y1 + k + 1)
                continue
            for k in range(x1, x2):
                rows += _rows_for("-", a[k], k + 1, None)
            for k in range(y1, y2):
                rows += _rows_for("+", b[k], None, k + 1)
        hunks.append(DiffHunk(header, i1 + 1, i2 - i1, j1 + 1, j2 - j1, tuple(rows)))
    return tuple(hunks)


def _similarity(old: bytes, new: bytes) -> float:
    """Rename score in [0, 1]: bytes of lines kept / size of the larger file (git-like)."""
    if old == new:
        return 1.0
    if not old or not new or _is_binary(old) or _is_binary(new):
        return 0.0
    a, b = _split_lines(old), _split_lines(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    kept = sum(len(line) for m in matcher.get_matching_blocks() for line in a[m.a : m.a + m.size])
    return kept / max(len(old), len(new))


def _file_diff(
    filename: str,
    status: Literal["added", "removed", "modified", "renamed"],
    old_value: TreeValue | None,
    new_value: TreeValue | None,
    previous_filename: str | None = None,
) -> FileDiff:
    old, new = _diff_bytes(old_value), _diff_bytes(new_value)
    old_bytes, new_bytes = old or b"", new or b""
    binary = _is_binary(old_bytes) or _is_binary(new_bytes)
    hunks = () if binary else _make_hunks(old_bytes, new_bytes)
    rows = [row for hunk in hunks for row in hunk.rows]
    listed = new_value if new_value is not None else old_value
    return FileDiff(
        filename=filename,
        status=status,
        sha=_entry_sha(listed) if listed is not None else git_blob_sha(b""),
        additions=sum(row.kind == "+" for row in rows),
        deletions=sum(row.kind == "-" for row in rows),
        binary=binary,
        hunks=hunks,
        previous_filename=previous_filename,
        old_sha=_entry_sha(old_value) if old_value is not None else None,
    )


def compute_files(base: Mapping[str, TreeValue], head: Mapping[str, TreeValue]) -> list[FileDiff]:
    """The files of a change from ``base`` to ``head``, sorted by filename, as GitHub lists them.

    A removed and an added file whose contents are identical or at least 50 % similar are
    reported once, as ``renamed`` with ``previous_filename``. Unchanged files are not listed.
    Symlinks and submodules (:class:`Symlink`, :class:`Submodule`) diff as git shows them (the
    target path; ``Subproject commit <sha>``) and take no part in rename detection.
    """
    removed = sorted(name for name in set(base) - set(head) if isinstance(base[name], bytes))
    added = sorted(name for name in set(head) - set(base) if isinstance(head[name], bytes))
    renames: dict[str, str] = {}  # new name -> old name
    for new_name in added:  # exact renames first, as git does
        for old_name in removed:
            if old_name not in renames.values() and base[old_name] == head[new_name]:
                renames[new_name] = old_name
                break
    scored = sorted(
        (
            (_similarity(_file_bytes(base[old_name]), _file_bytes(head[new_name])), new_name, old_name)
            for new_name in added
            if new_name not in renames
            for old_name in removed
            if old_name not in renames.values()
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for score, new_name, old_name in scored:
        if score < _RENAME_THRESHOLD:
            break
        if new_name not in renames and old_name not in renames.values():
            renames[new_name] = old_name

    diffs: list[FileDiff] = []
    for name in sorted(set(base) | set(head)):
        if name in renames:
            old_name = renames[name]
            diffs.append(_file_diff(name, "renamed", base[old_name], head[name], old_name))
        elif name in renames.values():
            continue
        elif name not in base:
            diffs.append(_file_diff(name, "added", None, head[name]))
        elif name not in head:
            diffs.append(_file_diff(name, "removed", base[name], None))
        elif base[name] != head[name]:
            diffs.append(_file_diff(name, "modified", base[name], head[name]))
    return diffs


def _file_bytes(value: TreeValue) -> bytes:
    assert isinstance(value, bytes)
    return value


def _git_diff_text(diffs: Iterable[FileDiff]) -> str:
    """A ``git diff``-style text of the files (served for ``Accept: application/vnd.github.diff``)."""
    chunks: list[str] = []
    for d in diffs:
        old_name = d.previous_filename or d.filename
        lines = [f"diff --git a/{old_name} b/{d.filename}"]
        if d.status == "added":
            lines.append("new file mode 100644")
        elif d.status == "removed":
            lines.append("deleted file mode 100644")
        elif d.status == "renamed":
            lines += [f"rename from {old_name}", f"rename to {d.filename}"]
        old_sha = (d.old_sha or "0" * 40)[:7]
        new_sha = "0000000" if d.status == "removed" else d.sha[:7]
        if d.status != "renamed" or d.hunks:
            lines.append(f"index {old_sha}..{new_sha}" + (" 100644" if d.status == "modified" else ""))
        a_path = "/dev/null" if d.status == "added" else f"a/{old_name}"
        b_path = "/dev/null" if d.status == "removed" else f"b/{d.filename}"
        if d.binary:
            lines.append(f"Binary files {a_path} and {b_path} differ")
        elif d.hunks:
            lines += [f"--- {a_path}", f"+++ {b_path}", *(h.text for h in d.hunks)]
        chunks.append("\n".join(lines) + "\n")
    return "".join(chunks)


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class SuggestionRefused(Exception):
    """What the pull request page says when a suggestion cannot be applied."""


#: A suggested change in a comment body: a fence of three or more backticks with the info string
#: ``suggestion``, closed by the same fence; its text replaces the commented lines.
SUGGESTION_BLOCK = re.compile(
    r"^(?P<fence>`{3,})suggestion[ \t]*\n(?P<text>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


@dataclass
class FakePull:
    """A pull request known to the fake. Tests may mutate :attr:`data` (e.g. ``data["draft"]``).

    :attr:`commits` maps every head commit the PR has had (oldest first) to its files; the diff
    served and validated against is always ``base_files`` -> the files of the commit concerned.
    """

    owner: str
    repo: str
    number: int
    data: dict[str, Any]
    base_sha: str
    base_ref: str
    base_files: dict[str, TreeValue]
    commits: dict[str, dict[str, TreeValue]]
    head_sha: str
    _diff_cache: dict[str, list[FileDiff]] = field(default_factory=dict, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def head_files(self) -> dict[str, TreeValue]:
        return self.commits[self.head_sha]

    def files(self, sha: str | None = None) -> list[FileDiff]:
        """The PR's files at head commit ``sha`` (default: the current head)."""
        sha = sha or self.head_sha
        if sha not in self._diff_cache:
            self._diff_cache[sha] = compute_files(self.base_files, self.commits[sha])
        return self._diff_cache[sha]

    def file(self, path: str, sha: str | None = None) -> FileDiff | None:
        return next((f for f in self.files(sha) if f.filename == path), None)


@dataclass
class _Branch:
    sha: str
    overlay: dict[str, TreeValue] = field(default_factory=dict)


@dataclass
class _Repo:
    owner: str
    name: str
    data: dict[str, Any]
    installation_id: int | None = None
    commits: dict[str, dict[str, TreeValue]] = field(default_factory=dict)
    branches: dict[str, _Branch] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    issues: set[int] = field(default_factory=set)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def default_branch(self) -> str:
        return str(self.data.get("default_branch") or "main")

    def tree(self, ref: str) -> dict[str, TreeValue] | None:
        """Files at a branch name (``refs/heads/`` optional) or commit sha; ``None`` if unknown.

        A branch's files are its commit's files plus whatever :meth:`FakeGitHub.set_branch_file`
        put on it; reading by the branch's commit sha gives the same view.
        """
        ref = ref.removeprefix("refs/heads/")
        if ref in self.branches:
            branch = self.branches[ref]
            return {**self.commits.get(branch.sha, {}), **branch.overlay}
        if ref in self.commits:
            files = dict(self.commits[ref])
            for branch in self.branches.values():
                if branch.sha == ref:
                    files.update(branch.overlay)
            return files
        return None

    def blob(self, sha: str) -> bytes | None:
        """The git blob with object id ``sha`` in any commit or branch of the repository."""
        trees = [*self.commits.values(), *(b.overlay for b in self.branches.values())]
        for tree in trees:
            for value in tree.values():
                if not isinstance(value, Submodule) and _entry_sha(value) == sha:
                    return _diff_bytes(value)
        return None


@dataclass
class _Installation:
    id: int
    account: dict[str, Any]
    repositories: set[str] = field(default_factory=set)  # lower-cased full names
    permissions: dict[str, str] = field(default_factory=dict)


@dataclass
class _IssuedToken:
    token: str
    installation_id: int
    expires_at: float
    repositories: frozenset[str] | None  # lower-cased full names; None = the whole installation
    permissions: dict[str, str]


@dataclass(frozen=True)
class _Principal:
    kind: Literal["app", "static", "installation"]
    installation_id: int | None = None
    repositories: frozenset[str] | None = None


_PRINCIPAL: ContextVar[_Principal] = ContextVar("fake_github_principal")


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    remaining: int


_ROLE_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                    "read": "read", "none": "none"}  # fmt: skip

_DEFAULT_PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeGitHub:
    """The fake GitHub REST API. Use as ``async with FakeGitHub(...) as gh:``.

    Credentials: ``Bearer <JWT>`` signed by ``app_private_key_pem``'s key with ``iss`` = ``app_id``
    is accepted on the app endpoints (``/app/...`` and ``GET /repos/{o}/{r}/installation``) only;
    ``token <t>`` / ``Bearer <t>`` with the static ``token`` or an unexpired installation token
    issued by the fake is accepted everywhere else. Requests must carry a ``User-Agent``.

    Recorders (lists of dicts, appended as requests arrive; the dicts are the JSON objects the
    fake serves, plus a few bookkeeping keys named below):

    * :attr:`reviews`: each review created, plus ``event``, ``comments`` (as received),
      ``repository`` (``owner/repo``) and ``pull_number``.
    * :attr:`review_comments`: every review comment (from reviews, replies, and seeded with
      :meth:`add_review_comment`) with ``id``, ``path``, ``line``, ``side``, ``start_line``,
      ``start_side``, ``body``, ``commit_id``, ``in_reply_to_id`` (``None`` unless a reply),
      ``user``, ``diff_hunk``, ``position``..., plus ``repository`` and ``pull_number``.
    * :attr:`replies`: the replies (also in :attr:`review_comments`).
    * :attr:`check_runs`: check runs, with their PATCH updates applied; accumulated annotations
      are in ``output["annotations"]``. :attr:`check_run_updates`: each PATCH body as received.
    * :attr:`reactions`: ``content``, ``subject`` (``issue_comment``/``review_comment``),
      ``comment_id``, ``repository``, ``user``.
    * :attr:`issue_comments`: issue (conversation) comments, seeded or posted.
    * :attr:`requests`: every request: ``method``, ``path`` (decoded), ``raw_path`` (as sent),
      ``query``, ``headers`` (a subset),
      ``json`` (parsed body or ``None``), ``time`` (``time.monotonic()``) and ``status``.
    * :attr:`token_exchanges`: each installation token issued: ``installation_id``, ``token``,
      ``expires_at``, ``claims`` (of the JWT used), ``repositories``, ``time``.
    * :attr:`graphql`: the ``POST /graphql`` endpoint (tests/fakes/github_graphql.py), with
      ``resolved`` (root comment id of each resolved review thread -> who resolved it) and
      ``mutations`` (each applied: ``name``, ``thread``, ``viewer``). :meth:`set_role` gives users
      repository roles (``GET .../collaborators/{username}/permission``).
    """

    def __init__(
        self,
        app_id: int | None = None,
        app_private_key_pem: bytes | None = None,
        token: str | None = None,
        *,
        token_kind: Literal["pat", "installation"] = "pat",
        app_slug: str = "patchwarden",
        pat_user: str = "patchwarden-ci",
        token_lifetime: float = 3600.0,
        max_patch_bytes: int | None = 1_000_000,
        default_per_page: int = 30,
        max_per_page: int = 100,
        rate_limit: int = 5000,
        content_creation_limits: Iterable[tuple[float, int]] = CONTENT_CREATION_LIMITS,
        host: str = "127.0.0.1",
    ) -> None:
        """Configure the fake (it is not serving until started).

        :param app_id: the GitHub App id JWTs must name in ``iss``.
        :param app_private_key_pem: the app's private key; the fake verifies JWTs with its public half.
        :param token: a static token accepted on every non-app endpoint.
        :param token_kind: what the static token is: ``"pat"`` (a personal access token: ``GET
            /user`` answers, the check-run endpoints refuse it with 403 "You must authenticate via
            a GitHub App.") or ``"installation"`` (an installation token minted elsewhere, such as
            Actions' ``GITHUB_TOKEN``: check runs work, ``GET /user`` is 403).
        :param app_slug: the app's slug; comments are authored by ``<slug>[bot]``.
        :param pat_user: the login a ``"pat"`` token belongs to (a personal access token is a
            user's: a machine account, type ``User``, no ``[bot]`` suffix).
        :param token_lifetime: seconds until an issued installation token expires (GitHub: 1 h).
        :param max_patch_bytes: files whose patch is larger are served without ``patch``
            (GitHub omits it for large diffs); ``None`` = never omit.
        :param default_per_page: page size when the client sends no ``per_page`` (GitHub: 30).
        :param max_per_page: cap on ``per_page`` (GitHub: 100); lower it to force several pages.
        :param rate_limit: the ``X-RateLimit-Limit``; requests past it get 403 until the reset.
        :param content_creation_limits: ``(window_seconds, max_requests)`` pairs for
            content-creating requests (POST/PATCH/PUT/DELETE); past one, a 403 secondary rate limit
            with ``Retry-After`` (GitHub documents 80 a minute and 500 an hour).

        Size tiers of the contents and blobs APIs are attributes, lowered by tests to exercise them
        without megabytes of data: :attr:`contents_inline_max` (1 MiB) and :attr:`blob_max_bytes`
        (100 MiB); likewise :attr:`pull_files_limit` (3,000 files listed per pull request).
        """
        self.app_id = app_id
        self.app_slug = app_slug
        self.pat_user = pat_user
        self.static_token = token
        self.token_kind = token_kind
        self.contents_inline_max = CONTENTS_JSON_MAX_BYTES
        self.pull_files_limit = PULL_FILES_LIMIT
        self.blob_max_bytes = BLOB_MAX_BYTES
        self.content_creation_limits = tuple(content_creation_limits)
        self._content_times: list[float] = []
        self.token_lifetime = token_lifetime
        self.max_patch_bytes = max_patch_bytes
        self.default_per_page = default_per_page
        self.max_per_page = max_per_page
        self.rate_limit = rate_limit
        self.rate_limit_remaining = rate_limit
        self.rate_limit_reset = int(time.time()) + 3600
        self._host = host
        self._public_key: Any = None
        if app_private_key_pem is not None:
            private_key = serialization.load_pem_private_key(app_private_key_pem, password=None)
            self._public_key = private_key.public_key()

        self.reviews: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.check_run_updates: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.issue_comments: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.token_exchanges: list[dict[str, Any]] = []

        self._repos: dict[str, _Repo] = {}
        self._installations: dict[int, _Installation] = {}
        self._tokens: dict[str, _IssuedToken] = {}
        self._failures: list[_Failure] = []
        self._holds: list[tuple[str, re.Pattern[str], asyncio.Event]] = []
        self.faults = Faults()
        self._refused_comment_bodies: list[re.Pattern[str]] = []
        self._ids = itertools.count(1_000_001)
        self._request_ids = itertools.count(1)
        self._request_id_prefix = secrets.token_hex(2).upper()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        # Repository roles of users (collaborators/get-collaborator-permission-level): lower-cased
        # "owner/repo" -> lower-cased login -> admin | maintain | write | triage | read
        self.roles: dict[str, dict[str, str]] = {}
        self.graphql = GraphQLEndpoint(self, self._graphql_access)
        self._app = self._build_app()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running fake, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("FakeGitHub is not running; use `async with FakeGitHub(...)`")
        return self._url

    async def start(self) -> None:
        """Start serving on an ephemeral port of ``127.0.0.1``."""
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://{self._host}:{port}"

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._url = None

    async def __aenter__(self) -> FakeGitHub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- setup API ---------------------------------------------------------------------------

    @property
    def bot_login(self) -> str:
        """The login comments, reviews and reactions are authored by: ``<app_slug>[bot]``, or the
        token's user for a personal access token."""
        if self.static_token is not None and self.token_kind == "pat" and self.app_id is None:
            return self.pat_user
        return f"{self.app_slug}[bot]"

    def add_installation(
        self,
        installation_id: int,
        repositories: Iterable[str] = (),
        *,
        account: Mapping[str, Any] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> None:
        """Install the app on ``repositories`` (``owner/repo`` names) as ``installation_id``.

        May be called repeatedly to add repositories. A repository belongs to one installation.
        """
        inst = self._installations.get(installation_id)
        if inst is None:
            account_data = dict(account) if account else {"login": "installer", "id": 1, "type": "User"}
            inst = _Installation(
                installation_id, account_data, permissions=dict(permissions or _DEFAULT_PERMISSIONS)
            )
            self._installations[installation_id] = inst
        elif permissions is not None:
            inst.permissions = dict(permissions)
        for full_name in repositories:
            key = full_name.lower()
            for other in self._installations.values():
                other.repositories.discard(key)
            inst.repositories.add(key)
            if key in self._repos:
                self._repos[key].installation_id = installation_id

    def add_installation_from_payload(self, payload: Mapping[str, Any]) -> int:
        """Register the installation of an ``installation``/``created`` webhook body; returns its id."""
        inst = payload["installation"]
        self.add_installation(
            int(inst["id"]),
            [repo["full_name"] for repo in payload.get("repositories") or ()],
            account=inst.get("account"),
            permissions=inst.get("permissions"),
        )
        return int(inst["id"])

    def add_repository(self, repository: Mapping[str, Any], installation_id: int | None = None) -> None:
        """Register a repository from a webhook ``repository`` object (needs ``full_name``)."""
        full_name = str(repository["full_name"])
        key = full_name.lower()
        repo = self._repos.get(key)
        if repo is None:
            owner, name = full_name.split("/", 1)
            repo = _Repo(owner, name, copy.deepcopy(dict(repository)))
            self._repos[key] = repo
        if installation_id is not None:
            self.add_installation(installation_id, [full_name])
        else:
            repo.installation_id = next(
                (i.id for i in self._installations.values() if key in i.repositories), repo.installation_id
            )

    def add_commit(self, owner: str, repo: str, sha: str, files: Mapping[str, TreeValue]) -> None:
        """Make a standalone commit known (readable by sha; valid ``head_sha`` for check runs)."""
        self._repo(owner, repo).commits[sha] = dict(files)

    def add_pull_from_payload(
        self,
        payload: Mapping[str, Any],
        base_files: Mapping[str, TreeValue],
        head_files: Mapping[str, TreeValue],
    ) -> FakePull:
        """Register ``payload["repository"]`` and ``payload["pull_request"]`` of a webhook body.

        The PR's base commit (``base.sha``, also the tip of branch ``base.ref``) gets
        ``base_files``, its head commit (``head.sha``) ``head_files``. If the body has an
        ``installation``, the repository is added to that installation. ``GET .../pulls/{n}``
        serves (a copy of) ``payload["pull_request"]``, with the SHAs kept current by :meth:`push`.
        """
        installation = payload.get("installation") or {}
        self.add_repository(payload["repository"], installation.get("id"))
        data = copy.deepcopy(dict(payload["pull_request"]))
        repo = self._repo_by_full_name(payload["repository"]["full_name"])
        number = int(data["number"])
        if number in repo.pulls:
            raise ValueError(f"pull #{number} of {repo.full_name} is already registered; use push()")
        base_sha, head_sha = str(data["base"]["sha"]), str(data["head"]["sha"])
        pull = FakePull(
            owner=repo.owner,
            repo=repo.name,
            number=number,
            data=data,
            base_sha=base_sha,
            base_ref=str(data["base"]["ref"]),
            base_files=dict(base_files),
            commits={head_sha: dict(head_files)},
            head_sha=head_sha,
        )
        repo.pulls[number] = pull
        repo.issues.add(number)
        repo.commits.setdefault(base_sha, dict(base_files))
        repo.commits[head_sha] = dict(head_files)
        repo.branches.setdefault(pull.base_ref, _Branch(base_sha)).sha = base_sha
        if self._same_repo_head(pull):
            repo.branches.setdefault(str(data["head"]["ref"]), _Branch(head_sha)).sha = head_sha
        return pull

    def push(
        self, owner: str, repo: str, number: int, head_files: Mapping[str, TreeValue], new_sha: str
    ) -> FakePull:
        """A new head commit ``new_sha`` on the PR; earlier heads stay readable by sha."""
        pull = self.pull(owner, repo, number)
        repository = self._repo(owner, repo)
        pull.commits[new_sha] = dict(head_files)
        pull.head_sha = new_sha
        pull.data["head"]["sha"] = new_sha
        pull.data["updated_at"] = _iso(time.time())
        repository.commits[new_sha] = dict(head_files)
        if self._same_repo_head(pull):
            repository.branches.setdefault(str(pull.data["head"]["ref"]), _Branch(new_sha)).sha = new_sha
        return pull

    def commit_suggestions(self, *comment_ids: int) -> dict[str, bytes]:
        """ "Commit suggestion" / "Commit suggestions" (a batch) on review comments of one pull
        request, as its page does it (DOCS ``incorporating-feedback-in-your-pull-request.md``,
        "Applying suggested changes": one commit for one suggestion or a batch; "Commenting on a
        pull request": a suggestion edits the line or lines the comment covers): each comment's
        `` ```suggestion `` block replaces lines ``start_line``..``line`` of its file at the head,
        all in one new head commit. Returns the new content of each file changed.

        Refused (:class:`SuggestionRefused`, in the page's own words) as GitHub refuses: no
        suggestion block; a comment on deleted lines (``LEFT``); an outdated comment (stricter than
        GitHub: made on any other head); a closed pull request; a suggestion equal to the lines it
        replaces; two suggestions on one line in a batch. Nothing is committed when one is refused.
        """
        edits: dict[str, list[tuple[int, int, str]]] = {}
        pull: FakePull | None = None
        for comment_id in comment_ids:
            comment = next((c for c in self.review_comments if c["id"] == comment_id), None)
            if comment is None or comment.get("in_reply_to_id"):
                raise SuggestionRefused("no review comment to apply")
            match = SUGGESTION_BLOCK.search(str(comment["body"]))
            if match is None:
                raise SuggestionRefused("the comment has no suggestion")
            owner, repo = str(comment["repository"]).split("/", 1)
            pull = self.pull(owner, repo, int(comment["pull_number"]))
            if comment["side"] != "RIGHT" or (comment.get("start_side") or "RIGHT") != "RIGHT":
                raise SuggestionRefused("Applying suggestions on deleted lines is not supported.")
            if comment["commit_id"] != pull.head_sha:
                raise SuggestionRefused("Outdated suggestions cannot be applied.")
            if pull.data.get("state") != "open":
                raise SuggestionRefused("Suggestions cannot be applied while the pull request is closed.")
            first = comment.get("start_line") or comment["line"]
            edits.setdefault(comment["path"], []).append((first, comment["line"], match.group("text")))
        assert pull is not None, "no comment given"
        changed: dict[str, bytes] = {}
        for path, found in edits.items():
            lines = bytes(pull.head_files[path]).decode().splitlines(keepends=True)
            previous = 0
            for first, last, text in sorted(found, reverse=True):
                if previous and last >= previous:
                    raise SuggestionRefused("Only one suggestion per line can be applied in a batch.")
                if "".join(lines[first - 1 : last]) == text:
                    raise SuggestionRefused(
                        "This suggestion is invalid because no changes were made to the code."
                    )
                lines[first - 1 : last] = [text]
                previous = first
            changed[path] = "".join(lines).encode()
        sha = hashlib.sha1(
            repr(sorted(changed.items())).encode() + pull.head_sha.encode(), usedforsecurity=False
        )
        self.push(pull.owner, pull.repo, pull.number, {**pull.head_files, **changed}, sha.hexdigest())
        return changed

    def set_branch_file(self, owner: str, repo: str, ref: str, path: str, content: TreeValue) -> None:
        """Put ``content`` at ``path`` on branch ``ref`` (created, with a made-up sha, if unknown).

        The file is readable through the contents API by the branch name and by the branch's
        commit sha, but it does not take part in any PR diff (as if it were on both sides).
        """
        repository = self._repo(owner, repo)
        branch = repository.branches.get(ref)
        if branch is None:
            sha = hashlib.sha1(f"{repository.full_name}:{ref}".encode(), usedforsecurity=False).hexdigest()
            repository.commits.setdefault(sha, {})
            branch = repository.branches[ref] = _Branch(sha)
        branch.overlay[path] = content if isinstance(content, Symlink | Submodule) else bytes(content)

    def add_review_comment(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        path: str,
        line: int,
        body: str,
        side: Side = "RIGHT",
        user_login: str = "octocat",
        commit_id: str | None = None,
        in_reply_to_id: int | None = None,
    ) -> dict[str, Any]:
        """Seed a review comment (e.g. a human's, or one from an earlier bot run); returns it.

        Like GitHub, the line must be in the diff of ``commit_id`` (default: the current head).
        """
        pull = self.pull(owner, repo, number)
        sha = commit_id or pull.head_sha
        diff = pull.file(path, sha) if sha in pull.commits else None
        if diff is None or diff.hunk_of(side, line) is None:
            raise ValueError(f"{path}:{line} ({side}) is not part of the diff of {sha}")
        comment = self._review_comment_json(
            pull,
            review_id=next(self._ids),
            comment_id=next(self._ids),
            diff=diff,
            commit_id=sha,
            body=body,
            line=line,
            side=side,
            start_line=None,
            start_side=None,
            path=path,
            user=self._user_json(user_login),
            in_reply_to_id=in_reply_to_id,
        )
        self.review_comments.append(comment)
        return comment

    def set_role(self, owner: str, repo: str, login: str, role: str) -> None:
        """Give ``login`` a repository role: admin, maintain, write, triage or read."""
        assert role in _ROLE_PERMISSION, role
        self.roles.setdefault(f"{owner}/{repo}".lower(), {})[login.lower()] = role

    def add_issue_comment(
        self,
        owner: str,
        repo: str,
        issue_number: int,
        *,
        body: str,
        comment_id: int | None = None,
        user_login: str = "octocat",
    ) -> dict[str, Any]:
        """Seed an issue/PR conversation comment (a reaction target); returns it."""
        repository = self._repo(owner, repo)
        repository.issues.add(issue_number)
        comment = self._issue_comment_json(
            repository, issue_number, comment_id or next(self._ids), body, self._user_json(user_login)
        )
        self.issue_comments.append(comment)
        return comment

    def add_issue_comment_from_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Register the repository, issue and comment of an ``issue_comment`` webhook body."""
        installation = payload.get("installation") or {}
        self.add_repository(payload["repository"], installation.get("id"))
        repository = self._repo_by_full_name(payload["repository"]["full_name"])
        number = int(payload["issue"]["number"])
        repository.issues.add(number)
        comment = copy.deepcopy(dict(payload["comment"]))
        comment["repository"] = repository.full_name
        comment["issue_number"] = number
        self.issue_comments.append(comment)
        return comment

    def lose_answer(
        self,
        method: str,
        path_regex: str,
        status: int | None = 502,
        count: int = 1,
        hold: asyncio.Event | None = None,
    ) -> None:
        """The next ``count`` matching requests are **applied**, then their answer is lost: replaced
        by ``status`` (a proxy's 502 after GitHub did the write) or, with ``status=None``, the
        connection is dropped. With ``hold`` the answer waits for the event (a test kills the bot
        in that window)."""
        self.faults.lose_answer(method, path_regex, status, count, hold)

    def chaos(
        self,
        fail_rate: float,
        lose_rate: float = 0.0,
        seed: int = 0,
        statuses: Iterable[int] = (500, 502, 503, 429),
    ) -> None:
        """Faults at random, reproducibly (``seed``): a ``fail_rate`` share of requests is answered
        with one of ``statuses`` *before* being served (429 with ``Retry-After: 0``, as GitHub's
        rate limits say when to come back), and a ``lose_rate`` share of the writes that were
        served loses its answer (a 502 or a dropped connection, half each). ``chaos(0)`` ends it."""
        self.faults.chaos(fail_rate, lose_rate, seed, statuses, lose_methods=WRITES)

    @property
    def chaos_counts(self) -> dict[str, int]:
        return self.faults.counts

    def hold(self, method: str, path_regex: str) -> asyncio.Event:
        """Keep requests matching waiting (a slow GitHub) until the returned event is set."""
        released = asyncio.Event()
        self._holds.append((method.upper(), re.compile(path_regex), released))
        return released

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests matching with ``status`` instead of serving them.

        ``method`` is an HTTP method or ``"*"``; ``path_regex`` is searched (``re.search``) in the
        request path (no query string). ``headers`` are added to (and override) the usual ones,
        e.g. ``{"Retry-After": "1"}`` or ``{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": ...}``.
        Without ``body`` a GitHub-like JSON message is chosen from the status and headers.
        Failures are checked before authentication, in the order they were added.
        """
        self._failures.append(
            _Failure(
                method=method.upper(),
                pattern=re.compile(path_regex),
                status=status,
                headers={k: str(v) for k, v in (headers or {}).items()},
                body=dict(body) if body is not None else None,
                remaining=count,
            )
        )

    def refuse_comments(self, body_regex: str) -> None:
        """From now on, refuse (422, the whole review) any review with a comment whose body matches.

        Stands in for the cases where GitHub's idea of a diff differs from the bot's (a line
        GitHub no longer considers part of the diff): the bot must not lose the other comments.
        """
        self._refused_comment_bodies.append(re.compile(body_regex))

    def expire_tokens(self) -> None:
        """Make every installation token issued so far expired (to test refreshing)."""
        for issued in self._tokens.values():
            issued.expires_at = min(issued.expires_at, time.time() - 1)

    # ---- inspection helpers ----------------------------------------------------------------

    def pull(self, owner: str, repo: str, number: int) -> FakePull:
        """The registered PR (``KeyError`` if unknown)."""
        pull = self._repo(owner, repo).pulls.get(number)
        if pull is None:
            raise KeyError(f"pull #{number} of {owner}/{repo} is not registered")
        return pull

    def files_of(self, owner: str, repo: str, number: int, sha: str | None = None) -> list[FileDiff]:
        """The PR's files as the fake computes them (what ``GET .../files`` serves)."""
        return self.pull(owner, repo, number).files(sha)

    @property
    def installation_tokens(self) -> dict[str, int]:
        """Every installation token issued, mapped to its installation id."""
        return {t: issued.installation_id for t, issued in self._tokens.items()}

    # ---- internals: state lookups --------------------------------------------------------------

    def _repo(self, owner: str, repo: str) -> _Repo:
        return self._repo_by_full_name(f"{owner}/{repo}")

    def _repo_by_full_name(self, full_name: str) -> _Repo:
        repository = self._repos.get(full_name.lower())
        if repository is None:
            raise KeyError(f"repository {full_name} is not registered")
        return repository

    @staticmethod
    def _same_repo_head(pull: FakePull) -> bool:
        head_repo = (pull.data.get("head") or {}).get("repo") or {}
        return str(head_repo.get("full_name", "")).lower() == pull.full_name.lower()

    # ---- internals: JSON shapes ------------------------------------------------------------

    def _user_json(self, login: str) -> dict[str, Any]:
        is_bot = login.endswith("[bot]")
        ident = int(hashlib.sha1(login.encode(), usedforsecurity=False).hexdigest()[:7], 16)
        return {
            "login": login,
            "id": ident,
            "node_id": _node_id("Bot" if is_bot else "User", ident),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
            "url": f"https://api.github.com/users/{login}",
            "html_url": f"https://github.com/apps/{login[:-5]}" if is_bot else f"https://github.com/{login}",
            "type": "Bot" if is_bot else "User",
            "site_admin": False,
        }

    def _app_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": _node_id("Integration", self.app_id or 0),
            "name": self.app_slug.capitalize(),
            "owner": self._user_json("patchwarden-dev"),
            "description": "Fake GitHub App",
            "external_url": "https://example.invalid",
            "html_url": f"https://github.com/apps/{self.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(_DEFAULT_PERMISSIONS),
            "events": ["check_run", "issue_comment", "pull_request"],
        }

    def _installation_json(self, inst: _Installation) -> dict[str, Any]:
        return {
            "id": inst.id,
            "account": inst.account,
            "repository_selection": "selected",
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/settings/installations/{inst.id}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": inst.account.get("id"),
            "target_type": inst.account.get("type", "User"),
            "permissions": inst.permissions,
            "events": [],
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def _review_comment_json(
        self,
        pull: FakePull,
        *,
        review_id: int,
        comment_id: int,
        diff: FileDiff | None,
        commit_id: str,
        body: str,
        line: int | None,
        side: Side,
        start_line: int | None,
        start_side: Side | None,
        path: str,
        user: dict[str, Any],
        in_reply_to_id: int | None,
    ) -> dict[str, Any]:
        now = _iso(time.time())
        full = pull.full_name
        api = f"{self.url}/repos/{full}"
        position = diff.position_of(side, line) if diff is not None and line is not None else None
        return {
            "url": f"{api}/pulls/comments/{comment_id}",
            "pull_request_review_id": review_id,
            "id": comment_id,
            "node_id": _node_id("PullRequestReviewComment", comment_id),
            "diff_hunk": diff.diff_hunk(side, line) if diff is not None and line is not None else "",
            "path": path,
            "position": position,
            "original_position": position,
            "commit_id": commit_id,
            "original_commit_id": commit_id,
            "in_reply_to_id": in_reply_to_id,
            "user": user,
            "body": body,
            "created_at": now,
            "updated_at": now,
            "html_url": f"https://github.com/{full}/pull/{pull.number}#discussion_r{comment_id}",
            "pull_request_url": f"{api}/pulls/{pull.number}",
            "author_association": "NONE",
            "_links": {
                "self": {"href": f"{api}/pulls/comments/{comment_id}"},
                "html": {"href": f"https://github.com/{full}/pull/{pull.number}#discussion_r{comment_id}"},
                "pull_request": {"href": f"{api}/pulls/{pull.number}"},
            },
            "start_line": start_line,
            "original_start_line": start_line,
            "start_side": start_side if start_line is not None else None,
            "line": line,
            "original_line": line,
            "side": side,
            "subject_type": "line",
            "repository": full,
            "pull_number": pull.number,
        }

    def _issue_comment_json(
        self, repository: _Repo, number: int, comment_id: int, body: str, user: dict[str, Any]
    ) -> dict[str, Any]:
        now = _iso(time.time())
        api = f"{self.url}/repos/{repository.full_name}"
        return {
            "url": f"{api}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repository.full_name}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{api}/issues/{number}",
            "id": comment_id,
            "node_id": _node_id("IssueComment", comment_id),
            "user": user,
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "body": body,
            "repository": repository.full_name,
            "issue_number": number,
        }

    @staticmethod
    def _public(record: Mapping[str, Any], *private: str) -> dict[str, Any]:
        """A recorder entry as served: bookkeeping keys removed."""
        return {k: v for k, v in record.items() if k not in private}

    def _public_review_comment(self, record: Mapping[str, Any]) -> dict[str, Any]:
        public = self._public(record, "repository", "pull_number")
        if public.get("in_reply_to_id") is None:
            public.pop("in_reply_to_id", None)  # GitHub only sends it on replies
        return public

    def _public_check_run(self, record: Mapping[str, Any]) -> dict[str, Any]:
        public = self._public(record, "repository")
        public["output"] = self._public(record["output"], "annotations")
        return public

    # ---- internals: the aiohttp application ------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        repo = "/repos/{owner}/{repo}"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/app", self._get_app),
            ("GET", "/user", self._get_user),
            ("POST", "/app/installations/{installation_id:\\d+}/access_tokens", self._create_token),
            ("GET", repo + "/installation", self._get_repo_installation),
            ("GET", repo, self._get_repo),
            ("GET", repo + "/pulls/{number:\\d+}", self._get_pull),
            ("GET", repo + "/pulls/{number:\\d+}/files", self._list_pull_files),
            ("GET", repo + "/pulls/{number:\\d+}/comments", self._list_review_comments),
            ("POST", repo + "/pulls/{number:\\d+}/comments/{comment_id:\\d+}/replies", self._create_reply),
            ("GET", repo + "/pulls/{number:\\d+}/reviews", self._list_reviews),
            ("POST", repo + "/pulls/{number:\\d+}/reviews", self._create_review),
            ("POST", repo + "/pulls/comments/{comment_id:\\d+}/reactions", self._react_review_comment),
            ("GET", repo + "/contents", self._get_contents),
            ("GET", repo + "/contents/{path:.*}", self._get_contents),
            ("GET", repo + "/git/blobs/{file_sha}", self._get_blob),
            ("POST", repo + "/check-runs", self._create_check_run),
            ("GET", repo + "/check-runs/{check_run_id:\\d+}", self._get_check_run),
            ("GET", repo + "/commits/{ref}/check-runs", self._list_check_runs_for_ref),
            ("PATCH", repo + "/check-runs/{check_run_id:\\d+}", self._update_check_run),
            ("POST", repo + "/issues/comments/{comment_id:\\d+}/reactions", self._react_issue_comment),
            ("PATCH", repo + "/issues/comments/{comment_id:\\d+}", self._update_issue_comment),
            ("GET", repo + "/issues/{number:\\d+}/comments", self._list_issue_comments),
            ("POST", repo + "/issues/{number:\\d+}/comments", self._create_issue_comment),
            ("GET", repo + "/collaborators/{username}/permission", self._get_permission),
            ("POST", "/graphql", self._graphql),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "raw_path": request.rel_url.raw_path,
            "query": dict(request.query),
            "headers": {h: request.headers[h] for h in _RECORDED_HEADERS if h in request.headers},
            "json": parsed,
            "time": time.monotonic(),
            "status": None,
        }
        self.requests.append(record)
        if (status := self.faults.random_failure()) is not None:
            headers = {"Retry-After": "0"} if status == 429 else {}
            response = web.json_response(
                {"message": http.HTTPStatus(status).phrase, "documentation_url": DOCS_URL},
                status=status,
                headers=headers,
            )
            self._decorate(response)
            record["status"] = status
            return response
        try:
            response = await self._dispatch(request, handler)
        except _ApiError as error:
            response = web.json_response(error.body, status=error.status, headers=error.headers)
        lost = self.faults.lost_answer(request.method, request.path) if response.status < 400 else None
        if lost is not None:
            if lost.hold is not None:
                await lost.hold.wait()
            if lost.status is None:
                assert request.transport is not None
                request.transport.abort()
                return response
            phrase = http.HTTPStatus(lost.status).phrase
            response = web.json_response(
                {"message": phrase, "documentation_url": DOCS_URL}, status=lost.status
            )
        self._decorate(response)
        record["status"] = response.status
        return response

    async def _dispatch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        for method, pattern, released in self._holds:
            if method in ("*", request.method) and pattern.search(request.path):
                await released.wait()
        failure = self._take_failure(request)
        if failure is not None:
            return failure
        if request.match_info.http_exception is not None:
            raise _not_found()  # unknown route or wrong method: GitHub says 404 either way
        if not request.headers.get("User-Agent"):
            raise _ApiError(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a "
                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
                "#user-agent-required). Check https://developer.github.com for other possible causes.",
            )
        principal = self._authenticate(request)
        self._spend_rate_limit(principal)
        if request.method in ("POST", "PATCH", "PUT", "DELETE"):
            self._spend_content_creation()
        _PRINCIPAL.set(principal)
        return await handler(request)

    def _decorate(self, response: web.StreamResponse) -> None:
        defaults = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_limit_remaining),
            "X-RateLimit-Reset": str(self.rate_limit_reset),
            "X-RateLimit-Used": str(self.rate_limit - self.rate_limit_remaining),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Request-Id": f"{self._request_id_prefix}:{next(self._request_ids):08X}",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }
        for name, value in defaults.items():
            response.headers.setdefault(name, value)

    def _take_failure(self, request: web.Request) -> web.Response | None:
        for failure in self._failures:
            if failure.method not in ("*", request.method) or not failure.pattern.search(request.path):
                continue
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            body = failure.body if failure.body is not None else self._failure_body(failure)
            return web.json_response(body, status=failure.status, headers=failure.headers)
        return None

    @staticmethod
    def _failure_body(failure: _Failure) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in failure.headers.items()}
        if failure.status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
            return {
                "message": "API rate limit exceeded for installation.",
                "documentation_url": RATE_LIMIT_DOCS_URL,
            }
        if failure.status in (403, 429):
            return {
                "message": SECONDARY_RATE_LIMIT_MESSAGE,
                "documentation_url": RATE_LIMIT_DOCS_URL + "#about-secondary-rate-limits",
            }
        try:
            phrase = http.HTTPStatus(failure.status).phrase
        except ValueError:
            phrase = "Error"
        return {"message": phrase, "documentation_url": DOCS_URL, "status": str(failure.status)}

    # ---- internals: auth and rate limit ----------------------------------------------------

    def _authenticate(self, request: web.Request) -> _Principal:
        scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if _JWT_PATH.match(request.path):
            if scheme != "bearer" or not credential:
                raise _ApiError(401, "A JSON web token could not be decoded")
            _JWT_CLAIMS.set(self._verify_jwt(credential))
            return _Principal("app")
        if scheme not in ("token", "bearer") or not credential:
            raise _bad_credentials()
        if self.static_token is not None and hmac.compare_digest(credential, self.static_token):
            return _Principal("static")
        issued = self._tokens.get(credential)
        if issued is None or issued.expires_at <= time.time():
            raise _bad_credentials()
        return _Principal("installation", issued.installation_id, issued.repositories)

    def _verify_jwt(self, credential: str) -> dict[str, Any]:
        if self._public_key is None or self.app_id is None:
            raise _ApiError(401, "A JSON web token could not be decoded")
        try:
            claims: dict[str, Any] = jwt.decode(
                credential,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _ApiError(401, "A JSON web token could not be decoded") from exc
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + 1:
            raise _ApiError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            )
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
            raise _ApiError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time "
                "at which the assertion expires",
            )
        if exp - iat > JWT_MAX_LIFETIME or exp > now + JWT_MAX_LIFETIME:
            raise _ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims.get("iss")) != str(self.app_id):
            raise _ApiError(401, "Integration not found")
        return claims

    def _spend_rate_limit(self, principal: _Principal) -> None:
        now = time.time()
        if now >= self.rate_limit_reset:
            self.rate_limit_reset = int(now) + 3600
            self.rate_limit_remaining = self.rate_limit
        if self.rate_limit_remaining <= 0:
            who = (
                f"installation ID {principal.installation_id}" if principal.installation_id else "this token"
            )
            raise _ApiError(403, f"API rate limit exceeded for {who}.", documentation_url=RATE_LIMIT_DOCS_URL)
        self.rate_limit_remaining -= 1

    def _spend_content_creation(self) -> None:
        """GitHub's documented secondary limits on content-creating requests (80/min, 500/h)."""
        now = time.monotonic()
        longest = max((window for window, _ in self.content_creation_limits), default=0)
        self._content_times = [t for t in self._content_times if now - t < longest]
        for window, limit in self.content_creation_limits:
            recent = [t for t in self._content_times if now - t < window]
            if len(recent) >= limit:
                wait = math.ceil(window - (now - recent[-limit]))
                raise _ApiError(
                    403,
                    SECONDARY_RATE_LIMIT_MESSAGE,
                    documentation_url=RATE_LIMIT_DOCS_URL + "#about-secondary-rate-limits",
                    headers={"Retry-After": str(max(1, wait))},
                )
        self._content_times.append(now)

    def _accessible_repo(self, request: web.Request) -> _Repo:
        """The repository of the route, or 404 if unknown or outside the token's installation."""
        principal = _PRINCIPAL.get()
        key = f"{request.match_info['owner']}/{request.match_info['repo']}".lower()
        repository = self._repos.get(key)
        if repository is None:
            raise _not_found()
        if principal.kind == "installation":
            inst = self._installations.get(principal.installation_id or -1)
            if inst is None or key not in inst.repositories:
                raise _not_found()
            if principal.repositories is not None and key not in principal.repositories:
                raise _not_found()
        return repository

    def _accessible_pull(self, request: web.Request) -> tuple[_Repo, FakePull]:
        repository = self._accessible_repo(request)
        pull = repository.pulls.get(int(request.match_info["number"]))
        if pull is None:
            raise _not_found()
        return repository, pull

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _ApiError(400, "Problems parsing JSON") from exc
        if not isinstance(body, dict):
            raise _ApiError(400, "Problems parsing JSON")
        return body

    def _paginate(self, request: web.Request, items: list[Any]) -> web.Response:
        """Serve ``items`` a page at a time with GitHub's ``Link`` header."""
        requested = _int_or_none(request.query.get("per_page"))
        per_page = requested if requested is not None and requested > 0 else self.default_per_page
        per_page = max(1, min(per_page, 100, self.max_per_page))
        page = max(1, _int_or_none(request.query.get("page")) or 1)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(target: int) -> str:
            return str(request.url.update_query(page=str(target)))

        rels: list[tuple[str, int]] = []
        if page > 1:
            rels.append(("prev", min(page - 1, last)))
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels.append(("first", 1))
        headers = {"Link": ", ".join(f'<{link(p)}>; rel="{rel}"' for rel, p in rels)} if rels else {}
        return web.json_response(chunk, headers=headers)

    # ---- handlers: app -----------------------------------------------------------------------

    async def _get_app(self, request: web.Request) -> web.Response:
        return web.json_response(self._app_json())

    async def _get_user(self, request: web.Request) -> web.Response:
        """The token's own account. Installation tokens are not users: GitHub answers 403."""
        if _PRINCIPAL.get().kind != "static" or self.token_kind == "installation":
            raise _ApiError(403, "Resource not accessible by integration")
        return web.json_response(self._user_json(self.bot_login))

    async def _get_repo_installation(self, request: web.Request) -> web.Response:
        repository = self._repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}".lower())
        inst = self._installations.get(repository.installation_id or -1) if repository else None
        if inst is None:
            raise _not_found()
        return web.json_response(self._installation_json(inst))

    async def _create_token(self, request: web.Request) -> web.Response:
        claims = _JWT_CLAIMS.get()
        installation_id = int(request.match_info["installation_id"])
        inst = self._installations.get(installation_id)
        if inst is None:
            raise _not_found()
        body = await self._json_body(request)
        scope: frozenset[str] | None = None
        names = body.get("repositories")
        if names is not None:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _invalid_request("For 'properties/repositories', the value is not an array of strings.")
            owner = str(inst.account.get("login", ""))
            wanted = {(n if "/" in n else f"{owner}/{n}").lower() for n in names}
            if not wanted <= inst.repositories:
                raise _ApiError(
                    422,
                    "There is at least one repository that does not exist or is not accessible to the parent installation.",
                )
            scope = frozenset(wanted)
        permissions = dict(inst.permissions)
        if isinstance(body.get("permissions"), dict):
            permissions = {k: str(v) for k, v in body["permissions"].items()}
        token = "ghs_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
        expires_at = time.time() + self.token_lifetime
        self._tokens[token] = _IssuedToken(token, installation_id, expires_at, scope, permissions)
        response = {
            "token": token,
            "expires_at": _iso(expires_at),
            "permissions": permissions,
            "repository_selection": "selected",
        }
        if scope is not None:
            response["repositories"] = [
                self._repos[name].data for name in sorted(scope) if name in self._repos
            ]
        self.token_exchanges.append(
            {
                "installation_id": installation_id,
                "token": token,
                "expires_at": response["expires_at"],
                "claims": claims,
                "repositories": sorted(scope) if scope is not None else None,
                "time": time.monotonic(),
            }
        )
        return web.json_response(response, status=201)

    # ---- handlers: repository, pulls, files, contents ------------------------------------------

    async def _get_repo(self, request: web.Request) -> web.Response:
        return web.json_response(self._accessible_repo(request).data)

    async def _get_pull(self, request: web.Request) -> web.Response:
        _, pull = self._accessible_pull(request)
        accept = request.headers.get("Accept", "")
        if ".diff" in accept or ".patch" in accept:
            return web.Response(text=_git_diff_text(pull.files()), content_type="text/plain")
        files = pull.files()
        counts = {
            "changed_files": len(files),
            "additions": sum(f.additions for f in files),
            "deletions": sum(f.deletions for f in files),
            "commits": len(pull.commits),
        }
        return web.json_response({**pull.data, **counts})

    async def _list_pull_files(self, request: web.Request) -> web.Response:
        _, pull = self._accessible_pull(request)
        base = f"{self.url}/repos/{pull.full_name}"
        entries: list[dict[str, Any]] = []
        for diff in pull.files()[: self.pull_files_limit]:
            sha_for_urls = pull.base_sha if diff.status == "removed" else pull.head_sha
            entry: dict[str, Any] = {
                "sha": diff.sha,
                "filename": diff.filename,
                "status": diff.status,
                "additions": diff.additions,
                "deletions": diff.deletions,
                "changes": diff.changes,
                "blob_url": f"https://github.com/{pull.full_name}/blob/{sha_for_urls}/{diff.filename}",
                "raw_url": f"https://github.com/{pull.full_name}/raw/{sha_for_urls}/{diff.filename}",
                "contents_url": f"{base}/contents/{diff.filename}?ref={sha_for_urls}",
            }
            patch = diff.patch
            if patch is not None and (
                self.max_patch_bytes is None or len(patch.encode()) <= self.max_patch_bytes
            ):
                entry["patch"] = patch
            if diff.previous_filename is not None:
                entry["previous_filename"] = diff.previous_filename
            entries.append(entry)
        return self._paginate(request, entries)

    async def _get_contents(self, request: web.Request) -> web.StreamResponse:
        """``GET /repos/{o}/{r}/contents/{path}``, as the OpenAPI description documents it:

        * a file of at most 1 MB: base64 ``content`` (wrapped at 60 columns, as GitHub does);
          1-100 MB: ``content: ""`` and ``encoding: "none"`` unless the raw media type is asked
          for; over 100 MB: 403 ``too_large``;
        * ``application/vnd.github.raw`` / ``.raw+json``: the bytes of a file or symlink;
        * a directory: a list of entries (``.object`` media type: one object with ``entries``),
          where submodules are listed as ``type: "file"`` (the documented backwards-compatibility
          quirk; ``X-GitHub-Api-Version: 2026-03-10`` lists them as ``submodule``);
        * a symlink whose target is a regular file of the tree: that file's content object (its
          own ``path`` and ``sha``); any other symlink: ``type: symlink`` with ``target``;
        * a submodule: ``type: submodule`` with ``submodule_git_url`` and the pinned commit as ``sha``;
        * anything else: 404 ``Not Found``.
        """
        repository = self._accessible_repo(request)
        path = request.match_info.get("path", "").strip("/")
        ref = request.query.get("ref") or repository.default_branch
        tree = repository.tree(ref)
        if tree is None:
            raise _ApiError(404, f"No commit found for the ref {ref}", documentation_url=CONTENTS_DOCS_URL)
        accept = request.headers.get("Accept", "")
        raw = ".raw" in accept
        as_object = ".object" in accept
        new_submodule_type = request.headers.get("X-GitHub-Api-Version", "") >= "2026-03-10"
        api = f"{self.url}/repos/{repository.full_name}"

        def entry(entry_path: str, kind: str, value: TreeValue | None) -> dict[str, Any]:
            if isinstance(value, Submodule):
                sha = value.sha
            elif value is not None:
                sha = _entry_sha(value)
            else:
                sha = hashlib.sha1(f"tree:{ref}:{entry_path}".encode(), usedforsecurity=False).hexdigest()
            blob_or_tree = "trees" if kind == "dir" else "blobs"
            html = f"https://github.com/{repository.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{entry_path}"
            git_url: str | None = f"{api}/git/{blob_or_tree}/{sha}"
            size = len(_diff_bytes(value) or b"") if not isinstance(value, Submodule) else 0
            if isinstance(value, Submodule):
                if value.url.startswith("https://github.com/"):
                    submodule_repo = value.url.removeprefix("https://github.com/").removesuffix(".git")
                    git_url = f"{self.url}/repos/{submodule_repo}/git/trees/{sha}"
                    html = f"https://github.com/{submodule_repo}/tree/{sha}"
                else:  # documented: not hosted on github.com -> the git and html URLs are null
                    git_url = None
                    html = None  # type: ignore[assignment]
            data: dict[str, Any] = {
                "type": kind,
                "size": size,
                "name": entry_path.rsplit("/", 1)[-1],
                "path": entry_path,
                "sha": sha,
                "url": f"{api}/contents/{entry_path}?ref={ref}",
                "git_url": git_url,
                "html_url": html,
                "download_url": (
                    f"https://raw.githubusercontent.com/{repository.full_name}/{ref}/{entry_path}"
                    if kind in ("file", "symlink") and not isinstance(value, Submodule)
                    else None
                ),
            }
            data["_links"] = {"self": data["url"], "git": git_url, "html": html}
            return data

        def raw_response(content: bytes) -> web.Response:
            return web.Response(body=content, content_type="application/vnd.github.raw")

        value = tree.get(path)
        if isinstance(value, Symlink):
            target = _resolve_link(path, value.target)
            if target is not None and isinstance(tree.get(target), bytes):
                path, value = target, tree[target]  # documented: "responds with the content of the file"
            elif raw:
                return raw_response(value.blob)
            else:
                data = entry(path, "symlink", value)
                data["target"] = value.target
                return web.json_response(data)
        if isinstance(value, Submodule):
            data = entry(path, "submodule", value)
            data["submodule_git_url"] = value.url
            return web.json_response(data)
        if isinstance(value, bytes):
            if len(value) > self.blob_max_bytes:
                raise _too_large("contents", CONTENTS_DOCS_URL)
            if raw:
                return raw_response(value)
            data = entry(path, "file", value)
            if len(value) > self.contents_inline_max:
                data["content"], data["encoding"] = "", "none"
            else:
                data["content"], data["encoding"] = _wrapped_base64(value), "base64"
            return web.json_response(data)

        prefix = f"{path}/" if path else ""
        children: dict[str, TreeValue | None] = {}  # name -> value (None: a subdirectory)
        for file_path, file_value in tree.items():
            if file_path.startswith(prefix):
                head, sep, _ = file_path[len(prefix) :].partition("/")
                if sep:
                    children.setdefault(head, None)
                else:
                    children[head] = file_value
        if not children:
            raise _ApiError(404, "Not Found", documentation_url=CONTENTS_DOCS_URL)

        def kind_of(child: TreeValue | None) -> str:
            if child is None:
                return "dir"
            if isinstance(child, Symlink):
                return "symlink"
            if isinstance(child, Submodule):
                return "submodule" if new_submodule_type else "file"  # the documented quirk
            return "file"

        listing = [entry(prefix + name, kind_of(child), child) for name, child in sorted(children.items())]
        if as_object:
            directory = entry(path, "dir", None)
            directory["entries"] = listing
            return web.json_response(directory)
        return web.json_response(listing)

    async def _get_blob(self, request: web.Request) -> web.StreamResponse:
        """``GET /repos/{o}/{r}/git/blobs/{file_sha}``: base64 ``content`` always (the default media
        type), the bytes with the raw media type; blobs up to 100 MB; 404 for an unknown blob."""
        repository = self._accessible_repo(request)
        sha = request.match_info["file_sha"]
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise _ApiError(  # the fake's wording
                422,
                "The sha parameter must be exactly 40 characters and contain only [0-9a-f].",
                documentation_url=BLOB_DOCS_URL,
            )
        content = repository.blob(sha)
        if content is None:
            raise _ApiError(404, "Not Found", documentation_url=BLOB_DOCS_URL)
        if len(content) > self.blob_max_bytes:
            raise _too_large("blob", BLOB_DOCS_URL)
        if ".raw" in request.headers.get("Accept", ""):
            return web.Response(body=content, content_type="application/vnd.github.raw")
        return web.json_response(
            {
                "sha": sha,
                "node_id": _node_id("Blob", int(sha[:8], 16)),
                "size": len(content),
                "url": f"{self.url}/repos/{repository.full_name}/git/blobs/{sha}",
                "content": _wrapped_base64(content),
                "encoding": "base64",
            }
        )

    # ---- handlers: reviews and review comments -----------------------------------------------

    async def _list_reviews(self, request: web.Request) -> web.Response:
        repository, pull = self._accessible_pull(request)
        items = [
            self._public(r, "event", "comments", "repository", "pull_number")
            for r in self.reviews
            if r["repository"] == repository.full_name and r["pull_number"] == pull.number
        ]
        return self._paginate(request, items)

    async def _list_review_comments(self, request: web.Request) -> web.Response:
        repository, pull = self._accessible_pull(request)
        items = [
            self._public_review_comment(c)
            for c in self.review_comments
            if c["repository"] == repository.full_name and c["pull_number"] == pull.number
        ]
        return self._paginate(request, items)

    async def _create_review(self, request: web.Request) -> web.Response:
        _, pull = self._accessible_pull(request)
        body = await self._json_body(request)
        event = body.get("event")
        if event is not None and event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            raise _invalid_request(
                f'For \'properties/event\', "{event}" is not one of ["APPROVE", "REQUEST_CHANGES", "COMMENT"].',
                REVIEW_DOCS_URL,
            )
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise _invalid_request(
                f"For 'properties/body', {json.dumps(text)} is not a string.", REVIEW_DOCS_URL
            )
        comments = body.get("comments", [])
        if not isinstance(comments, list) or not all(isinstance(c, dict) for c in comments):
            raise _invalid_request(
                "For 'properties/comments', the value is not an array of objects.", REVIEW_DOCS_URL
            )
        commit_id = body.get("commit_id") or pull.head_sha
        if commit_id not in pull.commits:
            raise _ApiError(
                422,
                "Unprocessable Entity",
                errors=["The commitOID is not part of the pull request"],
                documentation_url=REVIEW_DOCS_URL,
            )
        if event in ("REQUEST_CHANGES", "COMMENT") and not (text or "").strip():
            # Documented: body is "**Required** when using REQUEST_CHANGES or COMMENT for the event
            # parameter" -- with or without comments.
            raise _ApiError(
                422,
                "Unprocessable Entity",
                errors=[f"Review body is required for the {event} event"],  # the fake's wording
                documentation_url=REVIEW_DOCS_URL,
            )
        for c in comments:
            if any(p.search(str(c.get("body", ""))) for p in self._refused_comment_bodies):
                raise _ApiError(
                    422,
                    "Unprocessable Entity",
                    errors=["Pull request review thread line must be part of the diff"],
                    documentation_url=REVIEW_DOCS_URL,
                )
        placed = [self._place_comment(pull, commit_id, c) for c in comments]  # raises: nothing recorded

        review_id = next(self._ids)
        full = pull.full_name
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}.get(
            event or "", "PENDING"
        )
        user = self._user_json(self.bot_login)
        review: dict[str, Any] = {
            "id": review_id,
            "node_id": _node_id("PullRequestReview", review_id),
            "user": user,
            "body": text or "",
            "state": state,
            "html_url": f"https://github.com/{full}/pull/{pull.number}#pullrequestreview-{review_id}",
            "pull_request_url": f"{self.url}/repos/{full}/pulls/{pull.number}",
            "author_association": "NONE",
            "_links": {
                "html": {
                    "href": f"https://github.com/{full}/pull/{pull.number}#pullrequestreview-{review_id}"
                },
                "pull_request": {"href": f"{self.url}/repos/{full}/pulls/{pull.number}"},
            },
            "commit_id": commit_id,
        }
        if state != "PENDING":
            review["submitted_at"] = _iso(time.time())
        self.reviews.append(
            {
                **review,
                "event": event,
                "comments": copy.deepcopy(comments),
                "repository": full,
                "pull_number": pull.number,
            }
        )
        for received, (diff, line, side, start_line, start_side) in zip(comments, placed, strict=True):
            self.review_comments.append(
                self._review_comment_json(
                    pull,
                    review_id=review_id,
                    comment_id=next(self._ids),
                    diff=diff,
                    commit_id=commit_id,
                    body=str(received.get("body", "")),
                    line=line,
                    side=side,
                    start_line=start_line,
                    start_side=start_side,
                    path=diff.filename,
                    user=user,
                    in_reply_to_id=None,
                )
            )
        return web.json_response(review)

    def _place_comment(
        self, pull: FakePull, commit_id: str, comment: Mapping[str, Any]
    ) -> tuple[FileDiff, int, Side, int | None, Side | None]:
        """Validate one review comment like GitHub; returns (file, line, side, start_line, start_side)."""
        path, text = comment.get("path"), comment.get("body")
        if not isinstance(path, str):
            raise _missing("path", REVIEW_DOCS_URL)
        if not isinstance(text, str):
            raise _missing("body", REVIEW_DOCS_URL)
        for key in ("line", "start_line", "position"):
            if comment.get(key) is not None and not _is_int(comment[key]):
                raise _invalid_request(
                    f"For 'properties/{key}', {json.dumps(comment[key])} is not an integer.", REVIEW_DOCS_URL
                )
        for key in ("side", "start_side"):
            if comment.get(key) is not None and comment[key] not in ("LEFT", "RIGHT"):
                raise _invalid_request(
                    f'For \'properties/{key}\', {json.dumps(comment[key])} is not one of ["LEFT", "RIGHT"].',
                    REVIEW_DOCS_URL,
                )

        def reject(*messages: str) -> _ApiError:
            full = [f"Pull request review thread {m}" for m in messages]
            return _ApiError(
                422, "Unprocessable Entity", errors=[_to_sentence(full)], documentation_url=REVIEW_DOCS_URL
            )

        diff = pull.file(path, commit_id)
        if diff is None:
            raise reject("path is invalid", "diff hunk can't be blank")
        line, position, start_line = comment.get("line"), comment.get("position"), comment.get("start_line")
        if position is not None and (line is not None or start_line is not None):
            raise reject("position and line can't both be set")  # the fake's wording
        if position is not None:
            row = diff.row_at_position(position) if position > 0 else None
            if row is None:
                raise reject("position is invalid", "diff hunk can't be blank")
            side: Side = "RIGHT" if row.new_line is not None else "LEFT"
            resolved = row.new_line if row.new_line is not None else row.old_line
            assert resolved is not None
            return diff, resolved, side, None, None

        side = comment.get("side") or "RIGHT"
        start_side: Side = comment.get("start_side") or side
        hunk = diff.hunk_of(side, line) if line is not None else None
        problems: list[str] = []
        if hunk is None:
            problems.append("line must be part of the diff")
        if start_line is not None:
            start_hunk = diff.hunk_of(start_side, start_line)
            if hunk is None or start_hunk != hunk:
                problems.append("start line must be part of the same hunk as the line.")
            else:
                assert line is not None
                start_pos, end_pos = diff.position_of(start_side, start_line), diff.position_of(side, line)
                if start_pos is None or end_pos is None or start_pos >= end_pos:
                    problems.append("start line must precede the end line.")
        if problems:
            if hunk is None:
                problems.append("diff hunk can't be blank")
            raise reject(*problems)
        assert line is not None
        return diff, line, side, start_line, (start_side if start_line is not None else None)

    async def _create_reply(self, request: web.Request) -> web.Response:
        repository, pull = self._accessible_pull(request)
        comment_id = int(request.match_info["comment_id"])
        parent = next(
            (
                c
                for c in self.review_comments
                if c["id"] == comment_id
                and c["repository"] == repository.full_name
                and c["pull_number"] == pull.number
            ),
            None,
        )
        if parent is None:
            raise _not_found()
        body = await self._json_body(request)
        text = body.get("body")
        if not isinstance(text, str):
            raise _missing("body")
        if parent.get("in_reply_to_id") is not None:
            # Documented: "This must be the ID of a top-level review comment ... Replies to replies are not supported."
            raise _ApiError(422, "Unprocessable Entity", errors=["Replies to replies are not supported"])
        reply_id = next(self._ids)
        reply = dict(
            parent,
            id=reply_id,
            pull_request_review_id=next(self._ids),
            node_id=_node_id("PullRequestReviewComment", reply_id),
            url=f"{self.url}/repos/{repository.full_name}/pulls/comments/{reply_id}",
            html_url=f"https://github.com/{repository.full_name}/pull/{pull.number}#discussion_r{reply_id}",
            in_reply_to_id=comment_id,
            user=self._user_json(self.bot_login),
            body=text,
            created_at=_iso(time.time()),
            updated_at=_iso(time.time()),
        )
        reply["_links"] = dict(
            parent["_links"], self={"href": reply["url"]}, html={"href": reply["html_url"]}
        )
        self.review_comments.append(reply)
        self.replies.append(reply)
        return web.json_response(self._public_review_comment(reply), status=201)

    # ---- handlers: check runs ------------------------------------------------------------------

    def _validate_check_run(self, body: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        status = body.get("status")
        if status is not None and status not in CHECK_RUN_STATUSES:
            raise _invalid_request(
                f'For \'properties/status\', "{status}" is not one of ["queued", "in_progress", "completed"].',
                CHECK_RUN_DOCS_URL,
            )
        conclusion = body.get("conclusion")
        if conclusion is not None and conclusion not in CHECK_RUN_CONCLUSIONS:
            raise _invalid_request(
                f"For 'properties/conclusion', {json.dumps(conclusion)} is not one of "
                f"{json.dumps(sorted(CHECK_RUN_CONCLUSIONS))}.",
                CHECK_RUN_DOCS_URL,
            )
        completing = status == "completed" or body.get("completed_at") is not None
        has_conclusion = conclusion is not None or (
            current is not None and current.get("conclusion") is not None
        )
        if completing and not has_conclusion:
            raise _ApiError(
                422,
                "Validation Failed",
                errors=[{"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}],
                documentation_url=CHECK_RUN_DOCS_URL,
            )
        output = body.get("output")
        if output is None:
            return
        if not isinstance(output, dict):
            raise _invalid_request("For 'properties/output', the value is not an object.", CHECK_RUN_DOCS_URL)
        for key in ("title", "summary"):
            if not isinstance(output.get(key), str):
                raise _missing(key, CHECK_RUN_DOCS_URL)
        for key in ("summary", "text"):
            value = output.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise _invalid_request(
                    f"For 'properties/{key}', the value is not a string.", CHECK_RUN_DOCS_URL
                )
            if len(value) > CHECK_OUTPUT_LIMIT:
                raise _invalid_request(
                    f"Only {CHECK_OUTPUT_LIMIT} characters are allowed; {len(value)} were supplied.",
                    CHECK_RUN_DOCS_URL,
                )
            if len(value.encode()) > CHECK_OUTPUT_LIMIT:
                raise _ApiError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "CheckRun",
                            "code": "custom",
                            "field": key,
                            "message": f"{key} exceeds a maximum bytesize of {CHECK_OUTPUT_LIMIT}",
                        }
                    ],
                    documentation_url=CHECK_RUN_DOCS_URL,
                )
        annotations = output.get("annotations") or []
        if not isinstance(annotations, list) or len(annotations) > CHECK_ANNOTATIONS_PER_REQUEST:
            raise _invalid_request(
                f"Only {CHECK_ANNOTATIONS_PER_REQUEST} annotations are allowed per request.",
                CHECK_RUN_DOCS_URL,
            )
        for annotation in annotations:
            for key in ("path", "start_line", "end_line", "annotation_level", "message"):
                if not isinstance(annotation, dict) or annotation.get(key) is None:
                    raise _missing(key, CHECK_RUN_DOCS_URL)

    def _apply_check_run(self, record: dict[str, Any], body: Mapping[str, Any]) -> None:
        now = _iso(time.time())
        for key in ("name", "details_url", "external_id", "started_at", "completed_at", "actions"):
            if key in body:
                record[key] = body[key]
        if "status" in body:
            record["status"] = body["status"]
        if body.get("conclusion") is not None:
            record["conclusion"] = body["conclusion"]
            record["status"] = "completed"
        if record["status"] == "in_progress" and not record.get("started_at"):
            record["started_at"] = now
        if record["status"] == "completed" and not record.get("completed_at"):
            record["completed_at"] = now
        output = body.get("output")
        if isinstance(output, dict):
            current = record["output"]
            for key in ("title", "summary", "text"):
                if key in output:
                    current[key] = output[key]
            current["annotations"] = current["annotations"] + list(output.get("annotations") or [])
            current["annotations_count"] = len(current["annotations"])

    def _require_app(self) -> None:
        """Check runs are written by GitHub Apps only (installation tokens); a PAT gets 403."""
        if _PRINCIPAL.get().kind == "static" and self.token_kind == "pat":
            raise _ApiError(403, CHECK_RUN_APP_ONLY_MESSAGE, documentation_url=CHECK_RUN_DOCS_URL)

    async def _create_check_run(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        self._require_app()
        body = await self._json_body(request)
        for key in ("name", "head_sha"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise _missing(key, CHECK_RUN_DOCS_URL)
        self._validate_check_run(body, None)
        head_sha = body["head_sha"]
        if head_sha not in repository.commits:
            raise _ApiError(422, f"No commit found for SHA: {head_sha}", documentation_url=CHECK_RUN_DOCS_URL)
        run_id = next(self._ids)
        api = f"{self.url}/repos/{repository.full_name}"
        record: dict[str, Any] = {
            "id": run_id,
            "node_id": _node_id("CheckRun", run_id),
            "head_sha": head_sha,
            "external_id": "",
            "url": f"{api}/check-runs/{run_id}",
            "html_url": f"https://github.com/{repository.full_name}/runs/{run_id}",
            "details_url": None,
            "status": "queued",
            "conclusion": None,
            "started_at": _iso(time.time()),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api}/check-runs/{run_id}/annotations",
                "annotations": [],
            },
            "name": body["name"],
            "check_suite": {
                "id": int(hashlib.sha1(head_sha.encode(), usedforsecurity=False).hexdigest()[:8], 16)
            },
            "app": self._app_json(),
            "pull_requests": [
                {
                    "url": f"{api}/pulls/{p.number}",
                    "id": p.data.get("id"),
                    "number": p.number,
                    "head": {
                        "ref": p.data["head"]["ref"],
                        "sha": p.head_sha,
                        "repo": {"id": repository.data.get("id")},
                    },
                    "base": {"ref": p.base_ref, "sha": p.base_sha, "repo": {"id": repository.data.get("id")}},
                }
                for p in repository.pulls.values()
                if p.head_sha == head_sha
            ],
            "repository": repository.full_name,
        }
        self._apply_check_run(record, body)
        self.check_runs.append(record)
        return web.json_response(self._public_check_run(record), status=201)

    def _find_check_run(self, request: web.Request) -> dict[str, Any]:
        repository = self._accessible_repo(request)
        run_id = int(request.match_info["check_run_id"])
        record = next(
            (r for r in self.check_runs if r["id"] == run_id and r["repository"] == repository.full_name),
            None,
        )
        if record is None:
            raise _not_found()
        return record

    async def _list_check_runs_for_ref(self, request: web.Request) -> web.Response:
        """checks/list-for-ref: ``{"total_count", "check_runs"}``, ``check_name`` and ``filter``
        (``latest``, the default: the newest run of each name; ``all``), paged by ``Link``."""
        repository = self._accessible_repo(request)
        ref = request.match_info["ref"]
        mode = request.query.get("filter", "latest")
        if mode not in ("latest", "all"):
            raise _ApiError(422, f"filter must be latest or all, not {mode!r}")
        name = request.query.get("check_name")
        runs = [
            r
            for r in self.check_runs
            if r.get("repository") == repository.full_name
            and r["head_sha"] == ref
            and (name is None or r["name"] == name)
        ]
        if mode == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for r in runs:
                newest[r["name"]] = r
            runs = list(newest.values())
        runs.sort(key=lambda r: r["id"], reverse=True)
        page = self._paginate(request, [self._public_check_run(r) for r in runs])
        body = {"total_count": len(runs), "check_runs": json.loads(page.body)}  # type: ignore[arg-type]
        return web.json_response(body, headers={k: v for k, v in page.headers.items() if k == "Link"})

    async def _get_check_run(self, request: web.Request) -> web.Response:
        return web.json_response(self._public_check_run(self._find_check_run(request)))

    async def _update_check_run(self, request: web.Request) -> web.Response:
        self._accessible_repo(request)
        self._require_app()
        record = self._find_check_run(request)
        body = await self._json_body(request)
        if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
            raise _missing("name", CHECK_RUN_DOCS_URL)
        self._validate_check_run(body, record)
        self.check_run_updates.append({"id": record["id"], **copy.deepcopy(body)})
        self._apply_check_run(record, body)
        return web.json_response(self._public_check_run(record))

    # ---- handlers: issue comments and reactions ------------------------------------------------

    async def _list_issue_comments(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        number = int(request.match_info["number"])
        if number not in repository.issues:
            raise _not_found()
        items = [
            self._public(c, "repository", "issue_number")
            for c in self.issue_comments
            if c["repository"] == repository.full_name and c["issue_number"] == number
        ]
        return self._paginate(request, items)

    async def _create_issue_comment(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        number = int(request.match_info["number"])
        if number not in repository.issues:
            raise _not_found()
        body = await self._json_body(request)
        if not isinstance(body.get("body"), str):
            raise _missing("body")
        comment = self._issue_comment_json(
            repository, number, next(self._ids), body["body"], self._user_json(self.bot_login)
        )
        self.issue_comments.append(comment)
        return web.json_response(self._public(comment, "repository", "issue_number"), status=201)

    async def _update_issue_comment(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        comment = self._find_issue_comment(repository, int(request.match_info["comment_id"]))
        body = await self._json_body(request)
        if not isinstance(body.get("body"), str):
            raise _missing("body")
        comment["body"] = body["body"]
        comment["updated_at"] = _iso(time.time())
        return web.json_response(self._public(comment, "repository", "issue_number"))

    def _find_issue_comment(self, repository: _Repo, comment_id: int) -> dict[str, Any]:
        comment = next(
            (
                c
                for c in self.issue_comments
                if c["id"] == comment_id and c["repository"] == repository.full_name
            ),
            None,
        )
        if comment is None:
            raise _not_found()
        return comment

    async def _get_permission(self, request: web.Request) -> web.Response:
        """REST "Get repository permissions for a user" (repos/get-collaborator-permission-level):
        ``permission`` is the legacy base role ("the maintain role is mapped to write and the
        triage role is mapped to read"), ``role_name`` the role itself; a user with no role on
        the repository gets ``none`` here (the fake's repositories are private)."""
        repository = self._accessible_repo(request)
        login = request.match_info["username"]
        role = self.roles.get(repository.full_name.lower(), {}).get(login.lower(), "none")
        user = self._user_json(login)
        return web.json_response(
            {"permission": _ROLE_PERMISSION[role], "role_name": role, "user": {**user, "role_name": role}}
        )

    def _graphql_access(self, full_name: str) -> str:
        """What the request's credential may do on ``full_name``: none, read or write (pull requests)."""
        principal = _PRINCIPAL.get()
        key = full_name.lower()
        if principal.kind == "static":
            return "write"
        inst = self._installations.get(principal.installation_id or -1)
        if principal.kind != "installation" or inst is None or key not in inst.repositories:
            return "none"
        if principal.repositories is not None and key not in principal.repositories:
            return "none"
        return {"write": "write", "read": "read"}.get(inst.permissions.get("pull_requests", ""), "none")

    async def _graphql(self, request: web.Request) -> web.Response:
        """``POST /graphql`` (forming-calls-with-graphql.md, "Communicating with GraphQL"): HTTP 200
        with ``data`` and/or ``errors``; see tests/fakes/github_graphql.py."""
        return web.json_response(await self.graphql.execute(await self._json_body(request)))

    async def _react_issue_comment(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        comment_id = int(request.match_info["comment_id"])
        self._find_issue_comment(repository, comment_id)
        return await self._react(request, repository, "issue_comment", comment_id)

    async def _react_review_comment(self, request: web.Request) -> web.Response:
        repository = self._accessible_repo(request)
        comment_id = int(request.match_info["comment_id"])
        if not any(
            c["id"] == comment_id and c["repository"] == repository.full_name for c in self.review_comments
        ):
            raise _not_found()
        return await self._react(request, repository, "review_comment", comment_id)

    async def _react(
        self, request: web.Request, repository: _Repo, subject: str, comment_id: int
    ) -> web.Response:
        body = await self._json_body(request)
        content = body.get("content")
        if content is None:
            raise _missing("content")
        if content not in REACTION_CONTENTS:
            raise _ApiError(
                422,
                "Validation Failed",
                errors=[{"resource": "Reaction", "code": "invalid", "field": "content", "value": content}],
            )
        for existing in self.reactions:  # the same user reacting the same way again: 200, not a new one
            if (existing["repository"], existing["subject"], existing["comment_id"], existing["content"]) == (
                repository.full_name,
                subject,
                comment_id,
                content,
            ) and existing["user"]["login"] == self.bot_login:
                return web.json_response(self._public(existing, "repository", "subject", "comment_id"))
        reaction_id = next(self._ids)
        reaction = {
            "id": reaction_id,
            "node_id": _node_id("Reaction", reaction_id),
            "user": self._user_json(self.bot_login),
            "content": content,
            "created_at": _iso(time.time()),
            "repository": repository.full_name,
            "subject": subject,
            "comment_id": comment_id,
        }
        self.reactions.append(reaction)
        return web.json_response(self._public(reaction, "repository", "subject", "comment_id"), status=201)

"""A strict fake Gerrit for Patchwarden's tests.

One object serves both interfaces the bot talks to:

* the REST API (aiohttp, ``http://127.0.0.1:<ephemeral>``): ``/a/`` paths with HTTP
  Basic and the account's HTTP password, ``)]}'`` XSSI prefix on every JSON body,
  Gson-style escaping (``=`` -> ``\\u003d`` ...), pretty output unless
  ``Accept: application/json`` or ``?pp=0``;
* ``gerrit stream-events`` over SSH (asyncssh, public-key auth only).

State is plain Python objects that tests set up directly (accounts, branch files,
changes, patch sets, comments).  Everything the bot does is recorded
(``requests``, ``reviews``).  Behaviour follows Gerrit where it is known (see
``tests/fixtures/gerrit/README.md``); where the fake is deliberately *stricter*
than Gerrit it says so in the docstring of the method concerned.

Usage::

    async with FakeGerrit(user="patchwarden", http_password="secret") as g:
        human = g.add_account("Jane Roe", "jroe", "jane.roe@example.com")
        g.set_branch_file("myProject", "master", ".patchwarden.yaml", b"...")
        change = g.create_change("myProject", "master", human, "Add x",
                                 base_files={"a.py": b"x = 1\\n"},
                                 files={"a.py": b"x = 2\\n"})
        ...  # point the bot at g.url / g.ssh_port
        assert g.reviews[0].change == change.number
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import difflib
import json
import mimetypes
import os
import re
import secrets
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import quote, unquote

import asyncssh
from aiohttp import web

from tests.fakes.faults import Faults

__all__ = [
    "FIXTURES_DIR",
    "FakeAccount",
    "FakeChange",
    "FakeComment",
    "FakeGerrit",
    "FakeMessage",
    "FakePatchSet",
    "Gitlink",
    "RecordedRequest",
    "RecordedReview",
    "ReviewRejected",
    "Symlink",
    "generate_ssh_keypair",
    "gerrit_timestamp",
    "gson_dumps",
    "load_fixture",
    "parse_gerrit_timestamp",
]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "gerrit"

XSSI_PREFIX = ")]}'\n"
GERRIT_VERSION = "3.10.1"
COMMIT_MSG = "/COMMIT_MSG"
MERGE_LIST = "/MERGE_LIST"
PATCHSET_LEVEL = "/PATCHSET_LEVEL"
MAGIC_PATHS = frozenset({COMMIT_MSG, MERGE_LIST, PATCHSET_LEVEL})
NULL_SHA = "0" * 40
DEFAULT_CONTEXT = 10
NOTIFY_VALUES = frozenset({"NONE", "OWNER", "OWNER_REVIEWERS", "ALL"})
DRAFT_VALUES = frozenset({"KEEP", "PUBLISH", "PUBLISH_ALL_REVISIONS"})
WHITESPACE_VALUES = frozenset({"IGNORE_NONE", "IGNORE_TRAILING", "IGNORE_LEADING_AND_TRAILING", "IGNORE_ALL"})
PATCHSET_KINDS = frozenset(
    {"REWORK", "TRIVIAL_REBASE", "MERGE_FIRST_PARENT_UPDATE", "NO_CODE_CHANGE", "NO_CHANGE"}
)
# ListChangesOption names Gerrit accepts for ``o=``; the ones the fake renders are
# handled in _change_info, the others are accepted and ignored.
KNOWN_CHANGE_OPTIONS = frozenset(
    {
        "LABELS", "DETAILED_LABELS", "SUBMIT_REQUIREMENTS", "CURRENT_REVISION", "ALL_REVISIONS",
        "CURRENT_COMMIT", "ALL_COMMITS", "CURRENT_FILES", "ALL_FILES", "DETAILED_ACCOUNTS",
        "MESSAGES", "CURRENT_ACTIONS", "REVIEWED", "SUBMITTABLE", "WEB_LINKS", "CHECK",
        "CHANGE_ACTIONS", "COMMIT_FOOTERS", "PUSH_CERTIFICATES", "REVIEWER_UPDATES",
        "TRACKING_IDS", "DOWNLOAD_COMMANDS", "SKIP_DIFFSTAT", "STAR", "PARENTS",
        "CUSTOM_KEYED_VALUES", "SKIP_MERGEABLE", "DRAFT_COMMENTS", "STARRED",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- helpers


def load_fixture(relpath: str) -> Any:
    """Parse ``tests/fixtures/gerrit/<relpath>`` (JSON)."""
    return json.loads((FIXTURES_DIR / relpath).read_text(encoding="utf-8"))


_GSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("=", "\\u003d"),
    ("'", "\\u0027"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def gson_dumps(obj: Any, *, pretty: bool = False) -> str:
    """Serialise like Gerrit's Gson: HTML-safe escapes, raw non-ASCII, no nulls expected."""
    if pretty:
        text = json.dumps(obj, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # None of these characters is JSON syntax, so every occurrence is inside a string.
    for char, escape in _GSON_ESCAPES:
        text = text.replace(char, escape)
    return text


def gerrit_timestamp(dt: datetime) -> str:
    """``yyyy-mm-dd hh:mm:ss.fffffffff`` in UTC, as in Gerrit REST JSON."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond * 1000:09d}"


def parse_gerrit_timestamp(value: str) -> datetime:
    """Inverse of :func:`gerrit_timestamp`."""
    main, _, frac = value.partition(".")
    dt = datetime.strptime(main, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    if frac:
        dt += timedelta(microseconds=int(frac[:9].ljust(9, "0")) // 1000)
    return dt


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _random_sha() -> str:
    return secrets.token_hex(20)


def _new_uuid() -> str:
    """Comment/message ids look like Gerrit 3.x's ``ChangeUtil.messageUuid()``."""
    return f"{secrets.token_hex(4)}_{secrets.token_hex(4)}"


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8000]


_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _raw_lines(data: bytes) -> list[str]:
    """Lines with their ``\\n`` (the last one may lack it), like JGit's RawText."""
    return _LINE_RE.findall(data.decode("utf-8", errors="replace"))


def _display_lines(data: bytes) -> list[str]:
    return [line[:-1] if line.endswith("\n") else line for line in _raw_lines(data)]


class Symlink(bytes):
    """A tree entry of mode 120000: its bytes are the link target, as git stores it."""


class Gitlink(bytes):
    """A submodule entry (mode 160000): its bytes are the commit id, as Gerrit returns it."""


def _content_type(path: str, data: bytes | None) -> str:
    """``X-FYI-Content-Type``: FileContentUtil.getContent answers ``x-git/symlink`` for symlinks
    and ``x-git/gitlink`` (content: the commit id) for submodules."""
    if isinstance(data, Symlink):
        return "x-git/symlink"
    if isinstance(data, Gitlink):
        return "x-git/gitlink"
    if path == COMMIT_MSG:
        return "text/x-gerrit-commit-message"
    if data is not None and _is_binary(data):
        return mimetypes.guess_type(path)[0] or "application/octet-stream"
    guessed = mimetypes.guess_type(path)[0]
    if guessed is None:
        ext = os.path.splitext(path)[1]
        guessed = {".py": "text/x-python", ".yaml": "text/x-yaml", ".yml": "text/x-yaml"}.get(ext)
    return guessed or "text/plain"


def _label_vote(label: str, value: int) -> str:
    return f"{label}{value:+d}"


def _range_is_valid(r: Any) -> bool:
    """CommentRange as Gerrit's ``Range.isValid()``: 1-based lines, 0-based characters, start <= end."""
    keys = ("start_line", "start_character", "end_line", "end_character")
    if not isinstance(r, dict) or any(
        not isinstance(r.get(k), int) or isinstance(r.get(k), bool) for k in keys
    ):
        return False
    sl, sc, el, ec = (r[k] for k in keys)
    return sl > 0 and el > 0 and sc >= 0 and ec >= 0 and (sl < el or (sl == el and sc <= ec))


class FixNotApplicable(ValueError):
    """Gerrit's answer when a fix's replacements do not fit the file ("Apply Provided Fix")."""


def apply_fix_replacements(content: bytes, replacements: list[dict[str, Any]]) -> bytes:
    """A file's content with FixReplacementInfos applied, as "Apply Provided Fix" / "Apply Stored
    Fix" do (rest-api-changes.txt; FixReplacementInfo: "Lines in the file are assumed to be
    separated by the line feed character"): lines 1-based, characters 0-based (Java's UTF-16
    code units), a range ending at character 0 of line n+1 includes line n's line feed."""
    text = content.decode("utf-8")
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(line: int, character: int) -> int:
        if not 1 <= line <= len(lines):
            raise FixNotApplicable(f"line {line} is not in the file ({len(lines)} lines)")
        units = lines[line - 1].encode("utf-16-le")
        if character * 2 > len(units):
            raise FixNotApplicable(f"character {character} is past the end of line {line}")
        return starts[line - 1] + len(units[: character * 2].decode("utf-16-le"))

    out, position = [], 0
    for r in sorted(replacements, key=lambda r: (r["range"]["start_line"], r["range"]["start_character"])):
        rng = r["range"]
        start = offset(rng["start_line"], rng["start_character"])
        end = offset(rng["end_line"], rng["end_character"])
        out += [text[position:start], r["replacement"]]
        position = end
    out.append(text[position:])
    return "".join(out).encode("utf-8")


def _only_accepts_json(request: web.Request) -> bool:
    """True when the Accept header's one and only value is application/json (parameters allowed)."""
    values = [v.strip() for h in request.headers.getall("Accept", []) for v in h.split(",") if v.strip()]
    return len(values) == 1 and values[0].split(";", 1)[0].strip().lower() == "application/json"


def _plain(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Gerrit's error bodies: text/plain, no XSSI prefix."""
    body = text if text.endswith("\n") or not text else text + "\n"
    return web.Response(
        status=status,
        text=body,
        content_type="text/plain",
        charset="UTF-8",
        headers=dict(headers or {}),
    )


class _RestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReviewRejected(ValueError):
    """Raised by the test-side helpers when a review/comment would be rejected (HTTP status + text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def generate_ssh_keypair(directory: str | os.PathLike[str], name: str = "id_ed25519") -> tuple[Path, str]:
    """Write an asyncssh-generated ed25519 private key (OpenSSH format, mode 0600) into *directory*.

    Returns ``(private_key_path, public_key_openssh)``; the public key is also written to
    ``<name>.pub``.
    """
    key = asyncssh.generate_private_key("ssh-ed25519")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / name
    key.write_private_key(str(private_path))
    private_path.chmod(0o600)
    public = key.export_public_key("openssh").decode("ascii").strip()
    (directory / f"{name}.pub").write_text(public + "\n", encoding="ascii")
    return private_path, public


# --------------------------------------------------------------------------- state


@dataclass
class FakeAccount:
    account_id: int
    name: str
    username: str
    email: str
    display_name: str | None = None
    tags: list[str] = field(default_factory=list)
    registered_on: datetime = field(default_factory=lambda: datetime.now(UTC))

    def info(self, detailed: bool = True) -> dict[str, Any]:
        """AccountInfo; without DETAILED_ACCOUNTS Gerrit sends only ``_account_id``."""
        out: dict[str, Any] = {"_account_id": self.account_id}
        if detailed:
            out["name"] = self.name
            if self.display_name:
                out["display_name"] = self.display_name
            out["email"] = self.email
            out["username"] = self.username
            if self.tags:
                out["tags"] = list(self.tags)
        return out

    def attribute(self) -> dict[str, Any]:
        """AccountAttribute of stream events."""
        return {"name": self.name, "email": self.email, "username": self.username}


@dataclass
class FakeBranch:
    files: dict[str, bytes] = field(default_factory=dict)
    revision: str = field(default_factory=_random_sha)
    subject: str = "Initial commit"


@dataclass
class FakePatchSet:
    change_number: int
    number: int
    revision: str
    parent: str
    parent_subject: str
    base: dict[str, bytes]
    tree: dict[str, bytes]
    renames: dict[str, str]  # new path -> old path, relative to base
    kind: str
    uploader_id: int
    author_id: int
    created: datetime
    commit_message: str

    @property
    def ref(self) -> str:
        return f"refs/changes/{self.change_number % 100:02d}/{self.change_number}/{self.number}"

    @property
    def id_string(self) -> str:
        """``PatchSet.Id`` as Gerrit prints it in error messages (``3965,1``)."""
        return f"{self.change_number},{self.number}"


@dataclass
class FakeMessage:
    id: str
    author_id: int
    date: datetime
    message: str
    revision_number: int
    tag: str | None = None


@dataclass
class FakeComment:
    id: str
    path: str
    patch_set: int
    commit_id: str
    author_id: int
    message: str
    updated: datetime
    line: int | None = None
    range: dict[str, int] | None = None
    side: str = "REVISION"
    in_reply_to: str | None = None
    unresolved: bool = False
    tag: str | None = None
    change_message_id: str | None = None
    fix_suggestions: list[dict[str, Any]] | None = None


@dataclass
class FakeChange:
    number: int
    project: str
    branch: str
    change_id: str
    subject: str
    owner_id: int
    created: datetime
    updated: datetime
    status: str = "NEW"
    wip: bool = False
    private: bool = False
    topic: str | None = None
    patch_sets: list[FakePatchSet] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    votes: dict[int, dict[str, int]] = field(default_factory=dict)
    reviewers: dict[int, str] = field(default_factory=dict)  # account id -> REVIEWER | CC
    meta_rev_id: str = field(default_factory=_random_sha)
    review_started: bool = True

    @property
    def current(self) -> FakePatchSet:
        return self.patch_sets[-1]

    def patch_set(self, number: int) -> FakePatchSet:
        for ps in self.patch_sets:
            if ps.number == number:
                return ps
        raise KeyError(number)

    @property
    def url_id(self) -> str:
        """``<project>~<number>`` URL-encoded, as the bot should address the change."""
        return f"{quote(self.project, safe='')}~{self.number}"


class RecordedRequest(NamedTuple):
    method: str
    path: str  # raw (still percent-encoded) path without the query string
    user: str | None  # authenticated username, None if anonymous / bad credentials


class RecordedReview(NamedTuple):
    change: int
    revision: str
    input: dict[str, Any]


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    remaining: int
    body: str
    delay: float


@dataclass
class _LabelDef:
    name: str
    values: dict[int, str]

    @property
    def min(self) -> int:
        return min(self.values)

    @property
    def max(self) -> int:
        return max(self.values)


DEFAULT_LABELS: dict[str, dict[int, str]] = {
    "Code-Review": {
        -2: "This shall not be submitted",
        -1: "I would prefer this is not submitted as is",
        0: "No score",
        1: "Looks good to me, but someone else must approve",
        2: "Looks good to me, approved",
    },
    "Verified": {-1: "Fails", 0: "No score", 1: "Verified"},
}


@dataclass
class _FileDiff:
    path: str
    status: str  # A, D, M, R
    old_path: str | None
    old: bytes | None
    new: bytes | None


@dataclass
class _StreamClient:
    conn: asyncssh.SSHServerConnection
    subscriptions: frozenset[str]
    queue: asyncio.Queue[str]
    username: str


# --------------------------------------------------------------------------- diff engine


def _file_diffs(
    base: Mapping[str, bytes], tree: Mapping[str, bytes], renames: Mapping[str, str]
) -> dict[str, _FileDiff]:
    out: dict[str, _FileDiff] = {}
    rename_sources = {old for new, old in renames.items() if new in tree and old not in tree}
    for path in sorted(set(base) | set(tree)):
        old = base.get(path)
        new = tree.get(path)
        if path in rename_sources and new is None:
            continue
        if new is not None and path in renames and renames[path] in rename_sources:
            src = renames[path]
            out[path] = _FileDiff(path, "R", src, base[src], new)
        elif old is None and new is not None:
            out[path] = _FileDiff(path, "A", None, None, new)
        elif new is None and old is not None:
            out[path] = _FileDiff(path, "D", None, old, None)
        elif old != new:
            out[path] = _FileDiff(path, "M", None, old, new)
    return out


def _line_counts(old: bytes | None, new: bytes | None) -> tuple[int, int]:
    a = _raw_lines(old or b"")
    b = _raw_lines(new or b"")
    inserted = deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            inserted += j2 - j1
    return inserted, deleted


def _ws_key(mode: str) -> Callable[[str], str]:
    if mode == "IGNORE_NONE":
        return lambda s: s
    if mode == "IGNORE_TRAILING":
        return lambda s: s.rstrip()
    if mode == "IGNORE_LEADING_AND_TRAILING":
        return lambda s: s.strip()
    return lambda s: "".join(s.split())


def _diff_content(old: bytes, new: bytes, *, whitespace: str, context: int | None) -> list[dict[str, Any]]:
    """DiffInfo.content like Gerrit's GetDiff: ab / a+b / skip / common chunks.

    ``context=None`` means ALL (no ``skip``).
    """
    raw_a = _raw_lines(old)
    raw_b = _raw_lines(new)
    disp_a = [line.rstrip("\n") for line in raw_a]
    disp_b = [line.rstrip("\n") for line in raw_b]
    key = _ws_key(whitespace)
    ops = difflib.SequenceMatcher(
        None, [key(x) for x in raw_a], [key(x) for x in raw_b], autojunk=False
    ).get_opcodes()
    chunks: list[dict[str, Any]] = []

    def emit_common(i1: int, i2: int, j1: int) -> None:
        current: dict[str, Any] | None = None
        for off in range(i2 - i1):
            la, lb = raw_a[i1 + off], raw_b[j1 + off]
            if la == lb:
                if current is None or "ab" not in current:
                    current = {"ab": []}
                    chunks.append(current)
                current["ab"].append(disp_a[i1 + off])
            else:
                if current is None or "common" not in current:
                    current = {"a": [], "b": [], "common": True}
                    chunks.append(current)
                current["a"].append(disp_a[i1 + off])
                current["b"].append(disp_b[j1 + off])

    for index, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            n = i2 - i1
            if context is None:
                emit_common(i1, i2, j1)
                continue
            head = context if index > 0 else 0
            tail = context if index < len(ops) - 1 else 0
            if head + tail >= n:
                emit_common(i1, i2, j1)
            else:
                if head:
                    emit_common(i1, i1 + head, j1)
                chunks.append({"skip": n - head - tail})
                if tail:
                    emit_common(i2 - tail, i2, j2 - tail)
        else:
            chunk: dict[str, Any] = {}
            if i2 > i1:
                chunk["a"] = disp_a[i1:i2]
            if j2 > j1:
                chunk["b"] = disp_b[j1:j2]
            chunks.append(chunk)
    return chunks


# --------------------------------------------------------------------------- query parsing


_QUERY_TOKEN_RE = re.compile(r"""\s*(-?[A-Za-z_]+:(?:"[^"]*"|\{[^}]*\}|\S+)|\S+)""")


def _parse_query_time(value: str) -> datetime:
    value = value.strip().strip('"').strip("{}").strip()
    tz = UTC
    match = re.fullmatch(r"(.*?)\s+([+-]\d{4})", value)
    if match:
        value, offset = match.group(1), match.group(2)
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    raise _RestError(400, f"Invalid date/time: {value}")


_AGE_UNITS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("mon", "month", "months"), 30 * 86400),
    **dict.fromkeys(("y", "year", "years"), 365 * 86400),
}


def _parse_age(value: str) -> timedelta:
    """user-search.txt, "age:'AGE'": a number and a unit suffix (``-age:2d``: changed in the last
    two days; ``age:2d``: not changed for two days). A bare number is refused."""
    match = re.fullmatch(r"(\d+)\s*([a-z]+)", value.strip().lower())
    if match is None or match.group(2) not in _AGE_UNITS:
        raise _RestError(400, f"Unsupported age: {value}")
    return timedelta(seconds=int(match.group(1)) * _AGE_UNITS[match.group(2)])


# --------------------------------------------------------------------------- the fake


class FakeGerrit:
    """Fake Gerrit REST + SSH stream-events server.  See the module docstring."""

    def __init__(
        self,
        user: str = "patchwarden",
        http_password: str = "secret",
        *,
        bot_name: str = "Patchwarden",
        bot_email: str | None = None,
        bot_account_id: int = 1000000,
        first_change_number: int = 3965,
        strict_labels: bool = True,
        view_private_changes: bool = False,
        emit_ref_updated: bool = False,
        query_limit: int = 500,
        version: str = GERRIT_VERSION,
        refuse_fix_suggestions: bool = False,
    ) -> None:
        self.user = user
        self.version = version
        """Served by ``GET /config/server/version`` (rest-api-config.txt "Get Version"). Before 3.10
        a human comment's CommentInput has no ``fix_suggestions``: the fake then ignores the field,
        as Gerrit's Gson input parsing ignores any unknown field (nothing is stored, no error)."""
        self.refuse_fix_suggestions = refuse_fix_suggestions
        """Answer 400 to a comment with ``fix_suggestions``, as a server whose comment validators
        (config-validation.txt, "Comment validation") refuse them does."""
        self.query_limit = query_limit
        """The caller's ``queryLimit`` capability (access-control.txt, "Query Limit"; 500 by default):
        no query answers more changes than this, whatever ``n`` asks for, and the last change
        carries ``_more_changes`` when more match (rest-api-changes.txt, "Query Changes")."""
        self.http_password = http_password
        self.strict_labels = strict_labels
        """Gerrit's ``change.strictLabels`` defaults to *false* (unknown labels / invalid values
        are silently dropped); the fake defaults to strict (400) so bot mistakes surface."""
        self.view_private_changes = view_private_changes
        self.emit_ref_updated = emit_ref_updated

        self.accounts: dict[int, FakeAccount] = {}
        self.groups: dict[str, list[int]] = {}  # group name -> member account ids
        self.http_passwords: dict[str, str] = {user: http_password}
        self.bot = FakeAccount(
            account_id=bot_account_id,
            name=bot_name,
            username=user,
            email=bot_email or f"{user}@example.com",
            display_name=bot_name,
            tags=["SERVICE_USER"],
        )
        self.accounts[self.bot.account_id] = self.bot
        self._next_account_id = bot_account_id + 1

        self.labels: dict[str, _LabelDef] = {n: _LabelDef(n, dict(v)) for n, v in DEFAULT_LABELS.items()}
        self.grants: dict[int, dict[str, tuple[int, int]]] = {}

        self.projects: dict[str, dict[str, FakeBranch]] = {}
        self.changes: dict[int, FakeChange] = {}
        self._next_change_number = first_change_number

        self.reviews: list[RecordedReview] = []
        self.requests: list[RecordedRequest] = []
        self.request_urls: list[str] = []  # raw path + query of every request, in order
        self.events: list[dict[str, Any]] = []  # everything passed to emit()
        self._failures: list[_Failure] = []
        self.faults = Faults()
        self._clock_offset = timedelta(0)

        self._authorized_keys: list[asyncssh.SSHKey] = []
        self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._streams: list[_StreamClient] = []
        self._ssh_conns: set[asyncssh.SSHServerConnection] = set()
        self._stream_changed: asyncio.Event | None = None

        self._runner: web.AppRunner | None = None
        self._ssh_server: asyncssh.SSHAcceptor | None = None
        self._http_port = 0
        self.ssh_port = 0

    @property
    def takes_fix_suggestions(self) -> bool:
        """Whether this server's CommentInput has ``fix_suggestions`` (3.10 and newer)."""
        major, minor = (int(part) for part in re.findall(r"\d+", self.version)[:2])
        return (major, minor) >= (3, 10)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._stream_changed = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._http_port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

        self._ssh_server = await asyncssh.create_server(
            lambda: _SSHServer(self),
            "127.0.0.1",
            0,
            server_host_keys=[self._host_key],
            process_factory=self._handle_ssh_process,
            encoding="utf-8",
            allow_scp=False,
        )
        self.ssh_port = self._ssh_server.get_port()

    async def close(self) -> None:
        if self._ssh_server is not None:
            self.drop_streams()
            for conn in list(self._ssh_conns):
                conn.abort()
            self._ssh_server.close()
            await self._ssh_server.wait_closed()
            self._ssh_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def canonical_web_url(self) -> str:
        return self.url + "/"

    # ------------------------------------------------------------------ clock

    def now(self) -> datetime:
        dt = datetime.now(UTC) + self._clock_offset
        return dt.replace(microsecond=dt.microsecond // 1000 * 1000)

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward (affects created/updated/eventCreatedOn from now on)."""
        self._clock_offset += timedelta(seconds=seconds)

    # ------------------------------------------------------------------ accounts / permissions

    def add_account(self, name: str, username: str, email: str, http_password: str | None = None) -> int:
        account = FakeAccount(self._next_account_id, name, username, email, display_name=None)
        self._next_account_id += 1
        self.accounts[account.account_id] = account
        if http_password is not None:
            self.http_passwords[username] = http_password
        return account.account_id

    def add_group(self, name: str, member_ids: list[int]) -> None:
        """A group whose members ``GET /a/groups/{name}/members/`` lists (visible to everyone)."""
        self.groups[name] = list(member_ids)

    def account(self, account_id: int) -> FakeAccount:
        return self.accounts[account_id]

    def _resolve_account(self, ident: str, caller: FakeAccount | None = None) -> FakeAccount | None:
        if ident == "self":
            return caller
        for acc in self.accounts.values():
            if ident in (str(acc.account_id), acc.username, acc.email):
                return acc
        return None

    def add_label(self, name: str, values: Mapping[int, str]) -> None:
        self.labels[name] = _LabelDef(name, dict(values))

    def grant_label(self, label: str, min: int, max: int, account_id: int | None = None) -> None:
        """Allow the bot (or *account_id*) to vote ``min..max`` on *label*.

        Without a grant the bot may only send 0 (Gerrit always permits 0).
        Human accounts are treated as having the label's full range.
        """
        if label not in self.labels:
            raise ValueError(f"unknown label {label}")
        self.grants.setdefault(account_id or self.bot.account_id, {})[label] = (min, max)

    def _permitted_range(self, account_id: int, label: str) -> tuple[int, int] | None:
        if account_id != self.bot.account_id and account_id not in self.grants:
            lt = self.labels[label]
            return lt.min, lt.max
        return self.grants.get(account_id, {}).get(label)

    # ------------------------------------------------------------------ SSH keys

    def authorize_ssh_key(self, public_key_openssh: str) -> None:
        """Add an OpenSSH public key (``ssh-ed25519 AAAA... [comment]``) to the bot account."""
        self._authorized_keys.append(asyncssh.import_public_key(public_key_openssh.strip()))

    def known_hosts_line(self) -> str:
        key = self._host_key.export_public_key("openssh").decode("ascii").split()
        return f"[127.0.0.1]:{self.ssh_port} {key[0]} {key[1]}"

    def _key_authorized(self, key: asyncssh.SSHKey) -> bool:
        return any(key.public_data == k.public_data for k in self._authorized_keys)

    # ------------------------------------------------------------------ repository state

    def _project(self, project: str) -> dict[str, FakeBranch]:
        return self.projects.setdefault(project, {})

    def _branch(self, project: str, branch: str) -> FakeBranch:
        branch = branch.removeprefix("refs/heads/")
        return self._project(project).setdefault(branch, FakeBranch())

    def set_branch_file(self, project: str, branch: str, path: str, content: bytes | None) -> None:
        """Set (or with ``None`` delete) a file on a branch; the branch gets a new head sha."""
        b = self._branch(project, branch)
        if content is None:
            b.files.pop(path, None)
        else:
            b.files[path] = bytes(content)
        b.revision = _random_sha()
        b.subject = f"Update {path}"

    def create_change(
        self,
        project: str,
        branch: str,
        owner_id: int,
        subject: str,
        base_files: Mapping[str, bytes] | None = None,
        files: Mapping[str, bytes | None] | None = None,
        wip: bool = False,
        private: bool = False,
        change_id: str | None = None,
        *,
        renames: Mapping[str, str] | None = None,
        commit_body: str = "",
        topic: str | None = None,
        created: datetime | None = None,
        emit: bool = True,
    ) -> FakeChange:
        """Create change N (3965, 3966, ...) with patch set 1.

        *base_files* is the whole parent tree (default: the branch's files); *files* is
        overlaid on it (``None`` deletes a path).  *renames* maps new path -> old path
        (the old path disappears; content of the new path defaults to the old content).
        """
        if owner_id not in self.accounts:
            raise ValueError(f"unknown account {owner_id}")
        br = self._branch(project, branch)
        if base_files is None:
            base = dict(br.files)
            parent, parent_subject = br.revision, br.subject
        else:
            base = {k: bytes(v) for k, v in base_files.items()}
            parent, parent_subject = _random_sha(), "Base commit"
        number = self._next_change_number
        self._next_change_number += 1
        if change_id is None:
            change_id = "I" + _random_sha()
        ts = created or self.now()
        change = FakeChange(
            number=number,
            project=project,
            branch=branch.removeprefix("refs/heads/"),
            change_id=change_id,
            subject=subject,
            owner_id=owner_id,
            created=ts,
            updated=ts,
            wip=wip,
            private=private,
            topic=topic,
            review_started=not wip,
        )
        message = subject + "\n\n" + (commit_body.strip() + "\n\n" if commit_body.strip() else "")
        message += f"Change-Id: {change_id}\n"
        tree = self._apply_files(base, files or {}, renames or {})
        ps = FakePatchSet(
            change_number=number,
            number=1,
            revision=_random_sha(),
            parent=parent,
            parent_subject=parent_subject,
            base=base,
            tree=tree,
            renames=self._effective_renames(base, tree, renames or {}),
            kind="REWORK",
            uploader_id=owner_id,
            author_id=owner_id,
            created=ts,
            commit_message=message,
        )
        change.patch_sets.append(ps)
        change.messages.append(
            FakeMessage(
                _new_uuid(), owner_id, ts, "Uploaded patch set 1.", 1, "autogenerated:gerrit:newPatchSet"
            )
        )
        self.changes[number] = change
        if emit:
            self._emit_patchset_created(change, ps, old_rev=NULL_SHA)
        return change

    def upload_patchset(
        self,
        change: FakeChange | int,
        files: Mapping[str, bytes | None],
        kind: str = "REWORK",
        uploader: int | None = None,
        *,
        renames: Mapping[str, str] | None = None,
        commit_message: str | None = None,
        emit: bool = True,
    ) -> FakePatchSet:
        """Upload patch set N+1.  The parent stays the base of patch set 1.

        *files* is overlaid on the *previous patch set's* tree (``None`` deletes a path),
        so pass only what changed since the last upload.
        """
        change = self._as_change(change)
        if kind not in PATCHSET_KINDS:
            raise ValueError(f"unknown patch set kind {kind}")
        prev = change.current
        renames_all = dict(prev.renames)
        renames_all.update(renames or {})
        tree = self._apply_files(prev.tree, files, renames or {})
        ts = self.now()
        uploader_id = uploader if uploader is not None else change.owner_id
        ps = FakePatchSet(
            change_number=change.number,
            number=prev.number + 1,
            revision=_random_sha(),
            parent=prev.parent,
            parent_subject=prev.parent_subject,
            base=prev.base,
            tree=tree,
            renames=self._effective_renames(prev.base, tree, renames_all),
            kind=kind,
            uploader_id=uploader_id,
            author_id=change.owner_id,
            created=ts,
            commit_message=commit_message or prev.commit_message,
        )
        change.patch_sets.append(ps)
        change.updated = ts
        change.meta_rev_id = _random_sha()
        change.messages.append(
            FakeMessage(
                _new_uuid(), uploader_id, ts, f"Uploaded patch set {ps.number}.", ps.number,
                "autogenerated:gerrit:newPatchSet",
            )
        )  # fmt: skip
        if emit:
            self._emit_patchset_created(change, ps, old_rev=NULL_SHA)
        return ps

    @staticmethod
    def _apply_files(
        start: Mapping[str, bytes], files: Mapping[str, bytes | None], renames: Mapping[str, str]
    ) -> dict[str, bytes]:
        tree = dict(start)
        for new, old in renames.items():
            if old in tree:
                tree.setdefault(new, tree.pop(old))
        for path, content in files.items():
            if path in MAGIC_PATHS:
                raise ValueError(f"{path} is a magic path")
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content if isinstance(content, Symlink | Gitlink) else bytes(content)
        return tree

    @staticmethod
    def _effective_renames(
        base: Mapping[str, bytes], tree: Mapping[str, bytes], renames: Mapping[str, str]
    ) -> dict[str, str]:
        return {new: old for new, old in renames.items() if new in tree and old in base and old not in tree}

    def set_change_status(
        self, change: FakeChange | int, status: str, *, by: int | None = None, emit: bool = True
    ) -> None:
        """MERGED / ABANDONED / NEW (restore), emitting change-merged / -abandoned / -restored."""
        change = self._as_change(change)
        if status not in ("NEW", "MERGED", "ABANDONED"):
            raise ValueError(status)
        old = change.status
        change.status = status
        change.updated = self.now()
        who = self.accounts[by if by is not None else change.owner_id]
        if not emit or old == status:
            return
        if status == "MERGED":
            self._emit_change_event(
                change, "change-merged", "submitter", who, {"newRev": change.current.revision}
            )
        elif status == "ABANDONED":
            self._emit_change_event(change, "change-abandoned", "abandoner", who, {"reason": ""})
        else:
            self._emit_change_event(change, "change-restored", "restorer", who, {"reason": ""})

    def set_wip(
        self, change: FakeChange | int, wip: bool, *, by: int | None = None, emit: bool = True
    ) -> None:
        change = self._as_change(change)
        change.wip = wip
        if not wip:
            change.review_started = True
        change.updated = self.now()
        if emit:
            self._emit_change_event(
                change, "wip-state-changed", "changer", self.accounts[by or change.owner_id], {}
            )

    def add_comment(
        self,
        change: FakeChange | int,
        author_id: int,
        message: str,
        tag: str | None = None,
        *,
        patch_set: int | None = None,
        labels: Mapping[str, int] | None = None,
        comments: Mapping[str, list[dict[str, Any]]] | None = None,
        emit: bool = True,
    ) -> FakeMessage | None:
        """A human (or any account) replies on the change: change message, optional votes and
        inline comments (CommentInput dicts, validated like a REST review), ``comment-added``.

        Raises :class:`ReviewRejected` for input Gerrit would reject.
        """
        change = self._as_change(change)
        ps = change.patch_set(patch_set) if patch_set is not None else change.current
        review: dict[str, Any] = {"message": message}
        if tag is not None:
            review["tag"] = tag
        if labels:
            review["labels"] = dict(labels)
        if comments:
            review["comments"] = {k: list(v) for k, v in comments.items()}
        try:
            self._validate_review(change, ps, review, self.accounts[author_id])
        except _RestError as e:
            raise ReviewRejected(e.status, e.message) from None
        return self._apply_review(change, ps, review, self.accounts[author_id], emit=emit)

    def _as_change(self, change: FakeChange | int) -> FakeChange:
        return self.changes[change] if isinstance(change, int) else change

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int | None = 500,
        count: int = 1,
        body: str = "",
        delay: float = 0.0,
    ) -> None:
        """The next *count* requests whose method matches (``"*"`` = any) and whose raw path
        (percent-encoded, without query) matches *path_regex* (``re.search``) wait *delay*
        seconds and then answer *status* with a text/plain *body* (default: the reason phrase).
        ``status=None`` only delays and then serves the request normally (timeout tests).
        Injection happens before authentication.
        """
        self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, count, body, delay))

    def lose_answer(
        self,
        method: str,
        path_regex: str,
        status: int | None = 502,
        count: int = 1,
        hold: asyncio.Event | None = None,
    ) -> None:
        """The next *count* matching requests are **applied**, and then their answer is lost:
        replaced by *status* (as a proxy that timed out would send) or, with ``status=None``, the
        connection is dropped. With *hold*, the answer waits until the event is set (a test kills
        the bot in that window)."""
        self.faults.lose_answer(method, path_regex, status, count, hold)

    def chaos(
        self,
        fail_rate: float,
        lose_rate: float = 0.0,
        seed: int = 0,
        statuses: Iterable[int] = (500, 502, 503, 429),
    ) -> None:
        """Faults at random, reproducibly: a ``fail_rate`` share of REST requests is answered with
        one of ``statuses`` (text/plain, as Gerrit and its proxies answer; 429 with
        ``Retry-After: 0``) *before* being served; a ``lose_rate`` share of the POSTs that were
        served loses its answer (a 502 or a dropped connection, half each). ``chaos(0)`` ends it."""
        self.faults.chaos(fail_rate, lose_rate, seed, statuses, lose_methods=("POST",))

    @property
    def chaos_counts(self) -> dict[str, int]:
        return self.faults.counts

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.remaining > 0 and failure.method in ("*", method) and failure.pattern.search(path):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._failures.remove(failure)
                return failure
        return None

    # ------------------------------------------------------------------ events

    def emit(self, event: Mapping[str, Any]) -> None:
        """Push *event* to every connected ``stream-events`` client subscribed to its type.

        Events about a private change the bot may not see are not delivered (Gerrit filters
        events by visibility).
        """
        event = dict(event)
        self.events.append(event)
        line = gson_dumps(event) + "\n"
        etype = event.get("type")
        change_info = event.get("change")
        if isinstance(change_info, dict) and isinstance(change_info.get("number"), int):
            known = self.changes.get(change_info["number"])
            if known is not None and not self._visible(known, self.bot):
                return
        for client in list(self._streams):
            if not client.subscriptions or etype in client.subscriptions:
                client.queue.put_nowait(line)

    def _change_attribute(self, change: FakeChange) -> dict[str, Any]:
        out: dict[str, Any] = {"project": change.project, "branch": change.branch}
        if change.topic:
            out["topic"] = change.topic
        out.update(
            {
                "id": change.change_id,
                "number": change.number,
                "subject": change.subject,
                "owner": self.accounts[change.owner_id].attribute(),
                "url": f"{self.url}/c/{change.project}/+/{change.number}",
                "commitMessage": change.current.commit_message,
                "createdOn": _epoch(change.created),
                "status": change.status,
            }
        )
        if change.wip:
            out["wip"] = True
        if change.private:
            out["private"] = True
        return out

    def _patchset_attribute(self, ps: FakePatchSet) -> dict[str, Any]:
        inserted = deleted = 0
        for fd in _file_diffs(ps.base, ps.tree, ps.renames).values():
            if (fd.old is not None and _is_binary(fd.old)) or (fd.new is not None and _is_binary(fd.new)):
                continue
            ins, dels = _line_counts(fd.old, fd.new)
            inserted += ins
            deleted += dels
        return {
            "number": ps.number,
            "revision": ps.revision,
            "parents": [ps.parent],
            "ref": ps.ref,
            "uploader": self.accounts[ps.uploader_id].attribute(),
            "createdOn": _epoch(ps.created),
            "author": self.accounts[ps.author_id].attribute(),
            "kind": ps.kind,
            "sizeInsertions": inserted,
            "sizeDeletions": -deleted,
        }

    def _event_tail(self, change: FakeChange, etype: str) -> dict[str, Any]:
        return {
            "project": change.project,
            "refName": f"refs/heads/{change.branch}",
            "changeKey": {"id": change.change_id},
            "type": etype,
            "eventCreatedOn": _epoch(self.now()),
        }

    def patchset_created_event(self, change: FakeChange, ps: FakePatchSet | None = None) -> dict[str, Any]:
        ps = ps or change.current
        event: dict[str, Any] = {
            "uploader": self.accounts[ps.uploader_id].attribute(),
            "patchSet": self._patchset_attribute(ps),
            "change": self._change_attribute(change),
        }
        event.update(self._event_tail(change, "patchset-created"))
        return event

    def _emit_patchset_created(self, change: FakeChange, ps: FakePatchSet, old_rev: str) -> None:
        if self.emit_ref_updated:
            self.emit(
                {
                    "submitter": self.accounts[ps.uploader_id].attribute(),
                    "refUpdate": {
                        "oldRev": old_rev,
                        "newRev": ps.revision,
                        "refName": ps.ref,
                        "project": change.project,
                    },
                    "type": "ref-updated",
                    "eventCreatedOn": _epoch(self.now()),
                }
            )
        self.emit(self.patchset_created_event(change, ps))

    def _emit_change_event(
        self, change: FakeChange, etype: str, who_key: str, who: FakeAccount, extra: Mapping[str, Any]
    ) -> None:
        event: dict[str, Any] = {who_key: who.attribute()}
        event.update(extra)
        event["patchSet"] = self._patchset_attribute(change.current)
        event["change"] = self._change_attribute(change)
        event.update(self._event_tail(change, etype))
        self.emit(event)

    # ------------------------------------------------------------------ SSH stream-events

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    async def wait_for_stream(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least *n* ``stream-events`` clients are registered."""
        assert self._stream_changed is not None, "server not started"
        async with asyncio.timeout(timeout):
            while len(self._streams) < n:
                self._stream_changed.clear()
                await self._stream_changed.wait()

    def drop_streams(self) -> int:
        """Abruptly close (abort) the SSH connection of every stream client; returns how many."""
        clients = list(self._streams)
        self._streams.clear()
        for client in clients:
            client.conn.abort()
        if self._stream_changed is not None:
            self._stream_changed.set()
        return len(clients)

    async def _handle_ssh_process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command
        try:
            argv = shlex.split(command) if command else []
        except ValueError:
            argv = []
        if not argv:
            process.stderr.write(
                "\r\n  ****    Welcome to Gerrit Code Review    ****\r\n\r\n"
                "  Interactive shell is disabled.\r\n\r\n"
            )
            process.exit(127)
            return
        if argv[0] != "gerrit":
            process.stderr.write(f"fatal: {argv[0]}: not found\n")
            process.exit(1)
            return
        if len(argv) < 2 or argv[1] != "stream-events":
            sub = argv[1] if len(argv) > 1 else ""
            process.stderr.write(f"fatal: gerrit: {sub}: not found\n")
            process.exit(1)
            return
        subscriptions: set[str] = set()
        args = argv[2:]
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-s", "--subscribe"):
                if i + 1 >= len(args):
                    process.stderr.write('fatal: Option "--subscribe (-s)" takes an operand\n')
                    process.exit(1)
                    return
                subscriptions.add(args[i + 1])
                i += 2
            elif arg.startswith("--subscribe="):
                subscriptions.add(arg.split("=", 1)[1])
                i += 1
            else:
                process.stderr.write(f'fatal: "{arg}" is not a valid option\n')
                process.exit(1)
                return
        conn = process.channel.get_connection()
        assert isinstance(conn, asyncssh.SSHServerConnection)
        username = process.get_extra_info("username") or ""
        client = _StreamClient(conn, frozenset(subscriptions), asyncio.Queue(), username)
        self._streams.append(client)
        if self._stream_changed is not None:
            self._stream_changed.set()
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            while True:
                getter = asyncio.ensure_future(client.queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                process.stdout.write(getter.result())
                await process.stdout.drain()
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            pass
        finally:
            closed.cancel()
            if client in self._streams:
                self._streams.remove(client)
                if self._stream_changed is not None:
                    self._stream_changed.set()
            with contextlib.suppress(Exception):
                process.exit(0)

    # ------------------------------------------------------------------ visibility / lookup

    def _visible(self, change: FakeChange, account: FakeAccount) -> bool:
        if not change.private:
            return True
        return (
            self.view_private_changes
            or change.owner_id == account.account_id
            or account.account_id in change.reviewers
        )

    def _find_change(self, ident: str, caller: FakeAccount) -> FakeChange:
        candidates: list[FakeChange] = []
        parts = ident.split("~")
        if len(parts) == 2 and parts[1].isdigit():
            c = self.changes.get(int(parts[1]))
            if c is not None and c.project == parts[0]:
                candidates = [c]
        elif len(parts) == 3:
            candidates = [
                c for c in self.changes.values()
                if c.project == parts[0] and c.branch == parts[1].removeprefix("refs/heads/") and c.change_id == parts[2]
            ]  # fmt: skip
        elif len(parts) == 1 and ident.isdigit():
            c = self.changes.get(int(ident))
            candidates = [c] if c is not None else []
        elif len(parts) == 1 and re.fullmatch(r"I[0-9a-f]{40}", ident):
            candidates = [c for c in self.changes.values() if c.change_id == ident]
        candidates = [c for c in candidates if self._visible(c, caller)]
        if len(candidates) != 1:
            if len(candidates) > 1:
                raise _RestError(404, f"Multiple changes found for {ident}")
            raise _RestError(404, f"Not found: {ident}")
        return candidates[0]

    @staticmethod
    def _find_revision(change: FakeChange, ident: str) -> FakePatchSet:
        # Same rule as Gerrit's Revisions.parse: short decimal -> patch set number, else sha prefix.
        if ident == "current":
            return change.current
        if re.fullmatch(r"[1-9][0-9]{0,4}", ident):
            for ps in change.patch_sets:
                if ps.number == int(ident):
                    return ps
            raise _RestError(404, f"Not found: {ident}")
        if re.fullmatch(r"[0-9a-fA-F]{4,40}", ident):
            matches = [ps for ps in change.patch_sets if ps.revision.startswith(ident.lower())]
            if len(matches) == 1:
                return matches[0]
        raise _RestError(404, f"Not found: {ident}")

    # ------------------------------------------------------------------ JSON builders

    def _acct(self, account_id: int, detailed: bool) -> dict[str, Any]:
        return self.accounts[account_id].info(detailed)

    def _commit_message_file(self, ps: FakePatchSet, change: FakeChange) -> bytes:
        """What Gerrit shows as /COMMIT_MSG in files/diff (header + message)."""
        author = self.accounts[ps.author_id]
        uploader = self.accounts[ps.uploader_id]
        date = ps.created.strftime("%a %b %d %H:%M:%S %Y +0000")
        text = (
            f"Parent:     {ps.parent[:8]} ({ps.parent_subject})\n"
            f"Author:     {author.name} <{author.email}>\n"
            f"AuthorDate: {date}\n"
            f"Commit:     {uploader.name} <{uploader.email}>\n"
            f"CommitDate: {date}\n"
            "\n" + ps.commit_message
        )
        return text.encode("utf-8")

    def _commit_info(self, change: FakeChange, ps: FakePatchSet, with_sha: bool) -> dict[str, Any]:
        author = self.accounts[ps.author_id]
        uploader = self.accounts[ps.uploader_id]
        out: dict[str, Any] = {}
        if with_sha:
            out["commit"] = ps.revision
        out["parents"] = [{"commit": ps.parent, "subject": ps.parent_subject}]
        out["author"] = {
            "name": author.name,
            "email": author.email,
            "date": gerrit_timestamp(ps.created),
            "tz": 0,
        }
        out["committer"] = {
            "name": uploader.name,
            "email": uploader.email,
            "date": gerrit_timestamp(ps.created),
            "tz": 0,
        }
        out["subject"] = ps.commit_message.split("\n", 1)[0]
        out["message"] = ps.commit_message
        return out

    def _diffs_for(
        self, change: FakeChange, ps: FakePatchSet, base_ps: FakePatchSet | None
    ) -> dict[str, _FileDiff]:
        if base_ps is None:
            return _file_diffs(ps.base, ps.tree, ps.renames)
        return _file_diffs(base_ps.tree, ps.tree, {})

    def _file_infos(
        self, change: FakeChange, ps: FakePatchSet, base_ps: FakePatchSet | None, include_magic: bool
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if include_magic:
            msg_new = self._commit_message_file(ps, change)
            msg_old = self._commit_message_file(base_ps, change) if base_ps is not None else None
            info: dict[str, Any] = {}
            if msg_old is None:
                info["status"] = "A"
            ins, dels = _line_counts(msg_old, msg_new)
            if ins:
                info["lines_inserted"] = ins
            if dels:
                info["lines_deleted"] = dels
            info["size_delta"] = len(msg_new) - len(msg_old or b"")
            info["size"] = len(msg_new)
            if msg_old is None or msg_old != msg_new:
                out[COMMIT_MSG] = info
        for path, fd in self._diffs_for(change, ps, base_ps).items():
            info = {}
            if fd.status != "M":
                info["status"] = fd.status
            if fd.old_path:
                info["old_path"] = fd.old_path
            binary = (fd.old is not None and _is_binary(fd.old)) or (
                fd.new is not None and _is_binary(fd.new)
            )
            if binary:
                info["binary"] = True
            else:
                ins, dels = _line_counts(fd.old, fd.new)
                if ins:
                    info["lines_inserted"] = ins
                if dels:
                    info["lines_deleted"] = dels
            old_size = len(fd.old or b"")
            new_size = len(fd.new or b"")
            info["size_delta"] = new_size - old_size
            info["size"] = new_size if fd.new is not None else old_size
            out[path] = info
        return out

    def _revision_info(
        self, change: FakeChange, ps: FakePatchSet, opts: set[str], current: bool
    ) -> dict[str, Any]:
        detailed = "DETAILED_ACCOUNTS" in opts
        out: dict[str, Any] = {
            "kind": ps.kind,
            "_number": ps.number,
            "created": gerrit_timestamp(ps.created),
            "uploader": self._acct(ps.uploader_id, detailed),
            "ref": ps.ref,
        }
        if "ALL_COMMITS" in opts or ("CURRENT_COMMIT" in opts and current):
            out["commit"] = self._commit_info(change, ps, with_sha=False)
        if "ALL_FILES" in opts or ("CURRENT_FILES" in opts and current):
            out["files"] = self._file_infos(change, ps, None, include_magic=False)
        return out

    def _message_info(self, msg: FakeMessage, detailed: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": msg.id,
            "author": self._acct(msg.author_id, detailed),
            "real_author": self._acct(msg.author_id, detailed),
            "date": gerrit_timestamp(msg.date),
            "message": msg.message,
        }
        if msg.tag:
            out["tag"] = msg.tag
        out["_revision_number"] = msg.revision_number
        return out

    def _labels_info(self, change: FakeChange, detailed_labels: bool, detailed: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, lt in self.labels.items():
            info: dict[str, Any] = {}
            votes = [(acc, v[name]) for acc, v in change.votes.items() if v.get(name)]
            maxes = [acc for acc, val in votes if val == lt.max]
            mins = [acc for acc, val in votes if val == lt.min]
            if mins:
                info["rejected"] = self._acct(mins[0], detailed)
            elif maxes:
                info["approved"] = self._acct(maxes[0], detailed)
            else:
                neg = [(acc, val) for acc, val in votes if val < 0]
                pos = [(acc, val) for acc, val in votes if val > 0]
                if neg:
                    info["disliked"] = self._acct(neg[0][0], detailed)
                    info["value"] = neg[0][1]
                elif pos:
                    info["recommended"] = self._acct(pos[0][0], detailed)
                    info["value"] = pos[0][1]
            if detailed_labels:
                info["all"] = [
                    {"value": change.votes.get(acc, {}).get(name, 0), **self._acct(acc, detailed)}
                    for acc, state in change.reviewers.items()
                    if state == "REVIEWER"
                ]
                # ApprovalInfo.permitted_voting_range: "If absent, the user is not permitted to
                # vote on that label" (with DETAILED_LABELS only, rest-api-changes.txt).
                for approval in info["all"]:
                    rng = self._permitted_range(approval["_account_id"], name)
                    if rng is not None:
                        approval["permitted_voting_range"] = {"min": rng[0], "max": rng[1]}
                info["values"] = {(f"{v:+d}" if v else " 0"): d for v, d in sorted(lt.values.items())}
                info["default_value"] = 0
            out[name] = info
        return out

    def _change_info(self, change: FakeChange, opts: set[str], caller: FakeAccount) -> dict[str, Any]:
        detailed = "DETAILED_ACCOUNTS" in opts
        ins = dels = 0
        for info in self._file_infos(change, change.current, None, include_magic=False).values():
            ins += info.get("lines_inserted", 0)
            dels += info.get("lines_deleted", 0)
        out: dict[str, Any] = {
            "id": change.url_id,
            "triplet_id": f"{quote(change.project, safe='')}~{quote(change.branch, safe='')}~{change.change_id}",
            "project": change.project,
            "branch": change.branch,
        }
        if change.topic:
            out["topic"] = change.topic
        out.update(
            {
                "attention_set": {},
                "hashtags": [],
                "change_id": change.change_id,
                "subject": change.subject,
                "status": change.status,
                "created": gerrit_timestamp(change.created),
                "updated": gerrit_timestamp(change.updated),
                "insertions": ins,
                "deletions": dels,
                "total_comment_count": len(change.comments),
                "unresolved_comment_count": self._unresolved_count(change),
            }
        )
        if change.review_started:
            out["has_review_started"] = True
        out["meta_rev_id"] = change.meta_rev_id
        out["_number"] = change.number
        out["owner"] = self._acct(change.owner_id, detailed)
        if change.private:
            out["is_private"] = True
        if change.wip:
            out["work_in_progress"] = True
        if "LABELS" in opts or "DETAILED_LABELS" in opts:
            out["labels"] = self._labels_info(change, "DETAILED_LABELS" in opts, detailed)
        if "DETAILED_LABELS" in opts:
            permitted: dict[str, list[str]] = {}
            for name in self.labels:
                rng = self._permitted_range(caller.account_id, name)
                if rng is not None:
                    permitted[name] = [(f"{v:+d}" if v else " 0") for v in range(rng[0], rng[1] + 1)]
            out["permitted_labels"] = permitted
            reviewers: dict[str, list[dict[str, Any]]] = {}
            for acc, state in change.reviewers.items():
                reviewers.setdefault(state, []).append(self._acct(acc, detailed))
            out["reviewers"] = reviewers
        if "MESSAGES" in opts:
            out["messages"] = [self._message_info(m, detailed) for m in change.messages]
        if "CURRENT_REVISION" in opts or "ALL_REVISIONS" in opts:
            out["current_revision"] = change.current.revision
            revisions: dict[str, Any] = {}
            for ps in change.patch_sets:
                is_current = ps is change.current
                if is_current or "ALL_REVISIONS" in opts:
                    revisions[ps.revision] = self._revision_info(change, ps, opts, is_current)
            out["revisions"] = revisions
        out["current_revision_number"] = change.current.number
        return out

    @staticmethod
    def _unresolved_count(change: FakeChange) -> int:
        replied = {c.in_reply_to for c in change.comments if c.in_reply_to}
        leaves = [c for c in change.comments if c.id not in replied]
        return sum(1 for c in leaves if c.unresolved)

    def _comment_info(self, c: FakeComment, with_patch_set: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if with_patch_set:
            out["patch_set"] = c.patch_set
        out["id"] = c.id
        if c.side == "PARENT":
            out["side"] = "PARENT"
        if c.line:
            out["line"] = c.line
        if c.range is not None:
            out["range"] = dict(c.range)
        if c.in_reply_to:
            out["in_reply_to"] = c.in_reply_to
        out["message"] = c.message
        out["updated"] = gerrit_timestamp(c.updated)
        out["author"] = self._acct(c.author_id, True)
        if c.tag:
            out["tag"] = c.tag
        out["unresolved"] = c.unresolved
        if c.change_message_id:
            out["change_message_id"] = c.change_message_id
        out["commit_id"] = c.commit_id
        if c.fix_suggestions:
            out["fix_suggestions"] = c.fix_suggestions
        return out

    def _comments_map(
        self, comments: Iterable[FakeComment], with_patch_set: bool
    ) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[FakeComment]] = {}
        for c in comments:
            grouped.setdefault(c.path, []).append(c)
        out: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(grouped, key=lambda p: (p not in MAGIC_PATHS, p)):
            items = sorted(
                grouped[path], key=lambda c: (c.patch_set, c.side != "PARENT", c.line or 0, c.updated)
            )
            out[path] = [self._comment_info(c, with_patch_set) for c in items]
        return out

    # ------------------------------------------------------------------ review validation / application

    def _lines_of(self, change: FakeChange, ps: FakePatchSet, path: str, side: str) -> int | None:
        """Line count of *path* on *side*; None for binary content."""
        if path == COMMIT_MSG:
            return len(_display_lines(self._commit_message_file(ps, change))) if side == "REVISION" else 0
        data = ps.tree.get(path) if side == "REVISION" else ps.base.get(ps.renames.get(path, path))
        if data is None:
            return 0
        if _is_binary(data):
            return None
        return len(_display_lines(data))

    def _validate_review(self, change: FakeChange, ps: FakePatchSet, body: Any, author: FakeAccount) -> None:
        if not isinstance(body, dict):
            raise _RestError(400, "Expected JSON object")
        for key, typ, typename in (
            ("message", str, "string"),
            ("tag", str, "string"),
            ("labels", dict, "object"),
            ("comments", dict, "object"),
            ("notify", str, "string"),
            ("drafts", str, "string"),
            ("omit_duplicate_comments", bool, "boolean"),
            ("ready", bool, "boolean"),
            ("work_in_progress", bool, "boolean"),
            ("reviewers", list, "array"),
        ):
            if body.get(key) is not None and not isinstance(body[key], typ):
                raise _RestError(400, f"Invalid value for {key}: expected {typename}")
        if body.get("notify") is not None and body["notify"] not in NOTIFY_VALUES:
            raise _RestError(400, f"Invalid notify: {body['notify']}")
        if body.get("drafts") is not None and body["drafts"] not in DRAFT_VALUES:
            raise _RestError(400, f"Invalid drafts: {body['drafts']}")
        if body.get("ready") and body.get("work_in_progress"):
            raise _RestError(400, "work_in_progress and ready are mutually exclusive")

        for name, value in (body.get("labels") or {}).items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise _RestError(400, f'label "{name}": invalid value {value!r}')
            lt = self.labels.get(name)
            if lt is None:
                if self.strict_labels:
                    raise _RestError(400, f'label "{name}" is not a configured label')
                continue
            if value == 0:
                continue
            if value not in lt.values:
                if self.strict_labels:
                    raise _RestError(400, f'label "{name}": {value} is not a valid value')
                continue
            rng = self._permitted_range(author.account_id, name)
            if rng is None or not rng[0] <= value <= rng[1]:
                raise _RestError(403, f'Applying label "{name}": {value} is restricted')

        for reviewer in body.get("reviewers") or []:
            if not isinstance(reviewer, dict) or not isinstance(reviewer.get("reviewer"), str):
                raise _RestError(400, "Invalid reviewers: expected list of ReviewerInput")

        comments = body.get("comments") or {}
        affected = set(self._diffs_for(change, ps, None))
        existing_ids = {c.id for c in change.comments}
        for path, items in comments.items():
            if items is None:
                continue
            if not isinstance(items, list):
                raise _RestError(400, f"Invalid comments for {path}: expected array")
            if path not in affected and path not in MAGIC_PATHS:
                raise _RestError(400, f"file {path} not found in revision {ps.id_string}")
            for item in items:
                if not isinstance(item, dict):
                    raise _RestError(400, f"Invalid comment on {path}: expected object")
                self._validate_comment(change, ps, path, item, existing_ids)

    def _validate_comment(
        self, change: FakeChange, ps: FakePatchSet, path: str, c: dict[str, Any], existing_ids: set[str]
    ) -> None:
        message = c.get("message")
        if message is not None and not isinstance(message, str):
            raise _RestError(400, f"Invalid message for the comment on {path}")
        if not (message or "").strip():
            return  # Gerrit silently drops comments with an empty message
        line = c.get("line")
        rng = c.get("range")
        side = c.get("side")
        if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
            raise _RestError(400, f"Invalid line for the comment on {path}")
        if side is not None and side not in ("REVISION", "PARENT"):
            raise _RestError(400, f"Invalid side {side!r} for the comment on {path}")
        if line is not None and line < 0:
            raise _RestError(400, f"negative line number {line} not allowed on {path}")
        if path in MAGIC_PATHS and side == "PARENT":
            raise _RestError(400, f"cannot comment on {path} on auto-merge")
        if rng is not None:
            keys = ("start_line", "start_character", "end_line", "end_character")
            if not isinstance(rng, dict) or any(
                not isinstance(rng.get(k), int) or isinstance(rng.get(k), bool) for k in keys
            ):
                raise _RestError(400, f"Invalid range for the comment on {path}")
            sl, sc, el, ec = (rng[k] for k in keys)
            valid = sl > 0 and el > 0 and sc >= 0 and ec >= 0 and (sl < el or (sl == el and sc <= ec))
            if not valid:
                raise _RestError(400, f"Range ({sl}:{sc} - {el}:{ec}) is not valid for the comment on {path}")
        if path == PATCHSET_LEVEL and (side is not None or rng is not None or line is not None):
            raise _RestError(400, "Patchset-level comments can't have side, range, or line")
        in_reply_to = c.get("in_reply_to")
        if in_reply_to is not None and in_reply_to not in existing_ids:
            raise _RestError(400, f"Invalid inReplyTo, comment {in_reply_to} not found")
        unresolved = c.get("unresolved")
        if unresolved is not None and not isinstance(unresolved, bool):
            raise _RestError(400, f"Invalid unresolved for the comment on {path}")
        if c.get("fix_suggestions") is not None and self.takes_fix_suggestions:
            if self.refuse_fix_suggestions:
                raise _RestError(
                    400, f"Comment validation failed: fix suggestions are not accepted on {path}"
                )
            self._validate_fix_suggestions(path, c.get("fix_suggestions"))
        # Stricter than Gerrit (which stores comments on any line): a line or range past the end
        # of the file on the commented side is a bot bug, reject it.
        if path != PATCHSET_LEVEL:
            nlines = self._lines_of(change, ps, path, side or "REVISION")
            last = rng["end_line"] if rng is not None else line
            if last:
                if nlines is None:
                    raise _RestError(400, f"line {last} not allowed on binary file {path}")
                if last > nlines:
                    raise _RestError(
                        400,
                        f"line {last} is past the end of {path} ({nlines} lines) in revision {ps.id_string}",
                    )

    @staticmethod
    def _validate_fix_suggestions(path: str, fixes: Any) -> None:
        if fixes is None:
            return
        if not isinstance(fixes, list):
            raise _RestError(400, f"Invalid fix_suggestions for the comment on {path}")
        for fix in fixes:
            if not isinstance(fix, dict) or fix.get("description") is None:
                raise _RestError(
                    400, f"A description is required for the suggested fix of the comment on {path}"
                )
            replacements = fix.get("replacements")
            if not replacements:
                raise _RestError(
                    400,
                    f"At least one replacement is required for the suggested fix of the comment on {path}",
                )
            for rep in replacements:
                if not isinstance(rep, dict) or rep.get("path") is None:
                    raise _RestError(
                        400, f"A file path must be given for the replacement of the comment on {path}"
                    )
                if rep["path"] == PATCHSET_LEVEL:
                    raise _RestError(
                        400,
                        f"A file path must not be {PATCHSET_LEVEL} for the replacement of the comment on {path}",
                    )
                r = rep.get("range")
                if not isinstance(r, dict):
                    raise _RestError(
                        400, f"A range must be given for the replacement of the comment on {path}"
                    )
                if not _range_is_valid(r):
                    raise _RestError(
                        400,
                        f"Range ({r.get('start_line')}:{r.get('start_character')} - {r.get('end_line')}:"
                        f"{r.get('end_character')}) is not valid for the comment on {path}",
                    )
                if rep.get("replacement") is None:
                    raise _RestError(
                        400,
                        f"A content for replacement must be indicated for the replacement of the comment on {path}",
                    )
            # CommentsValidator.ensureRangesDoNotOverlap: per file, sorted by range.
            by_file: dict[str, list[tuple[int, int, int, int]]] = {}
            for rep in replacements:
                r = rep["range"]
                by_file.setdefault(rep["path"], []).append(
                    (r["start_line"], r["start_character"], r["end_line"], r["end_character"])
                )
            for ranges in by_file.values():
                previous_line, previous_offset = 0, -1
                for sl, sc, el, ec in sorted(ranges):
                    if sl < previous_line or (sl == previous_line and sc < previous_offset):
                        raise _RestError(400, f"Replacements overlap for the comment on {path}")
                    previous_line, previous_offset = el, ec

    def _apply_review(
        self,
        change: FakeChange,
        ps: FakePatchSet,
        body: dict[str, Any],
        author: FakeAccount,
        *,
        emit: bool = True,
    ) -> FakeMessage | None:
        ts = self.now()
        tag = body.get("tag")
        # Votes
        labels = {
            k: v
            for k, v in (body.get("labels") or {}).items()
            if k in self.labels and (v == 0 or v in self.labels[k].values)
        }
        current_votes = change.votes.setdefault(author.account_id, {})
        old_votes = dict(current_votes)
        vote_strs: list[str] = []
        for name, value in labels.items():
            old = current_votes.get(name, 0)
            if value == 0:
                current_votes.pop(name, None)
                if old:
                    vote_strs.append(f"-{name}")
            else:
                current_votes[name] = value
                if old != value:
                    vote_strs.append(_label_vote(name, value))
        if any(v != 0 for v in labels.values()):
            change.reviewers[author.account_id] = "REVIEWER"
        else:
            change.reviewers.setdefault(author.account_id, "CC")
        for reviewer in body.get("reviewers") or []:
            acc = self._resolve_account(reviewer["reviewer"], author)
            if acc is not None:
                change.reviewers[acc.account_id] = reviewer.get("state", "REVIEWER")

        # Comments
        message_text = (body.get("message") or "").strip()
        new_comments: list[FakeComment] = []
        existing_keys = {
            (c.path, c.patch_set, c.line or 0, c.side, c.message, json.dumps(c.range, sort_keys=True))
            for c in change.comments
        }
        by_id = {c.id: c for c in change.comments}
        for path, items in (body.get("comments") or {}).items():
            for item in items or []:
                msg = item.get("message") or ""
                if not msg.strip():
                    continue
                rng = item.get("range")
                line = rng["end_line"] if rng is not None else item.get("line")
                side = item.get("side") or "REVISION"
                key = (path, ps.number, line or 0, side, msg, json.dumps(rng, sort_keys=True))
                if body.get("omit_duplicate_comments") and key in existing_keys:
                    continue
                in_reply_to = item.get("in_reply_to")
                unresolved = item.get("unresolved")
                if unresolved is None:
                    unresolved = by_id[in_reply_to].unresolved if in_reply_to in by_id else False
                new_comments.append(
                    FakeComment(
                        id=_new_uuid(),
                        path=path,
                        patch_set=ps.number,
                        commit_id=ps.revision,
                        author_id=author.account_id,
                        message=msg,
                        updated=ts,
                        line=line or None,
                        range=dict(rng) if rng is not None else None,
                        side=side,
                        in_reply_to=in_reply_to,
                        unresolved=bool(unresolved),
                        tag=tag,
                        fix_suggestions=[
                            {"fix_id": _new_uuid(), **fix}
                            for fix in (item.get("fix_suggestions") if self.takes_fix_suggestions else None)
                            or []
                        ]
                        or None,
                    )
                )
        if body.get("work_in_progress"):
            change.wip = True
        if body.get("ready"):
            change.wip = False
            change.review_started = True

        if not vote_strs and not new_comments and not message_text:
            return None

        header = f"Patch Set {ps.number}:"
        if vote_strs:
            header += " " + " ".join(vote_strs)
        text = header
        if new_comments:
            n = len(new_comments)
            text += f"\n\n({n} comment{'s' if n != 1 else ''})"
        if message_text:
            text += "\n\n" + message_text
        msg_obj = FakeMessage(_new_uuid(), author.account_id, ts, text, ps.number, tag)
        change.messages.append(msg_obj)
        for c in new_comments:
            c.change_message_id = msg_obj.id
        change.comments.extend(new_comments)
        change.updated = ts
        change.meta_rev_id = _random_sha()

        if emit:
            approvals: list[dict[str, Any]] = []
            for name in self.labels:
                if self._permitted_range(author.account_id, name) is None and name not in labels:
                    continue
                value = current_votes.get(name, 0)
                approval: dict[str, Any] = {"type": name, "description": name, "value": str(value)}
                if name in labels and old_votes.get(name, 0) != value:
                    approval["oldValue"] = str(old_votes.get(name, 0))
                approvals.append(approval)
            event: dict[str, Any] = {"author": author.attribute()}
            if approvals:
                event["approvals"] = approvals
            event["comment"] = text
            event["patchSet"] = self._patchset_attribute(ps)
            event["change"] = self._change_attribute(change)
            event.update(self._event_tail(change, "comment-added"))
            self.emit(event)
        return msg_obj

    # ------------------------------------------------------------------ HTTP

    def _authenticate(self, request: web.Request) -> FakeAccount | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep or self.http_passwords.get(username) != password:
            return None
        for acc in self.accounts.values():
            if acc.username == username:
                return acc
        return None

    def _json(self, request: web.Request, payload: Any, status: int = 200) -> web.Response:
        pp = request.query.get("pp")
        if pp is not None:
            pretty = pp not in ("0", "false")
        else:
            pretty = "application/json" not in request.headers.get("Accept", "")
        body = XSSI_PREFIX + gson_dumps(payload, pretty=pretty) + "\n"
        headers = {"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"}
        return web.Response(
            status=status, text=body, content_type="application/json", charset="UTF-8", headers=headers
        )

    def _content(self, request: web.Request, data: bytes, fyi_type: str) -> web.Response:
        """Get Content (rest-api-changes.txt "Get Content"; the same BinaryResult for branch files in
        rest-api-projects.txt "Get Content"): base64 text, *unless the only value of the Accept
        request header is application/json*, then ``)]}'`` + a JSON string and
        ``X-FYI-Content-Encoding: json``."""
        if _only_accepts_json(request):
            body = XSSI_PREFIX + gson_dumps(data.decode("utf-8", errors="replace")) + "\n"
            return web.Response(
                status=200,
                text=body,
                content_type="application/json",
                charset="UTF-8",
                headers={
                    "Content-Disposition": "attachment",
                    "X-FYI-Content-Encoding": "json",
                    "X-FYI-Content-Type": fyi_type,
                    "X-Content-Type-Options": "nosniff",
                },
            )
        return self._base64_body(data, fyi_type)

    def _base64_body(self, data: bytes, fyi_type: str) -> web.Response:
        return web.Response(
            status=200,
            body=base64.b64encode(data),
            headers={
                "Content-Type": "text/plain; charset=ISO-8859-1",
                "Content-Disposition": "attachment",
                "X-FYI-Content-Encoding": "base64",
                "X-FYI-Content-Type": fyi_type,
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path
        raw_path, _, _ = raw.partition("?")
        user = self._authenticate(request) if raw_path.startswith("/a/") else None
        self.requests.append(RecordedRequest(request.method, raw_path, user.username if user else None))
        self.request_urls.append(raw)
        trace = request.headers.get("X-Gerrit-Trace")
        extra_headers = {"X-Gerrit-Trace": trace} if trace else {}

        if raw_path.startswith("/a/") and (status := self.faults.random_failure()) is not None:
            return _plain(status, HTTPStatus(status).phrase, {"Retry-After": "0"} if status == 429 else {})
        failure = self._take_failure(request.method, raw_path)
        if failure is not None:
            if failure.delay:
                await asyncio.sleep(failure.delay)
            if failure.status is not None:
                try:
                    reason = HTTPStatus(failure.status).phrase
                except ValueError:
                    reason = "Error"
                return _plain(failure.status, failure.body or reason, extra_headers)

        segments = [unquote(s) for s in raw_path.split("/")[1:]]
        if segments[:3] == ["config", "server", "version"] or segments[:4] == [
            "a",
            "config",
            "server",
            "version",
        ]:
            if segments[0] == "a" and user is None:
                return self._unauthorized()
            return self._json(request, self.version)
        if not segments or segments[0] != "a" or user is None:
            return self._unauthorized()
        try:
            response = await self._route(request, segments[1:], user)
        except _RestError as e:
            response = _plain(e.status, e.message)
        lost = self.faults.lost_answer(request.method, raw_path) if response.status < 400 else None
        if lost is not None:
            if lost.hold is not None:
                await lost.hold.wait()
            if lost.status is None:
                assert request.transport is not None
                request.transport.abort()
                return response
            return _plain(lost.status, HTTPStatus(lost.status).phrase)
        for k, v in extra_headers.items():
            response.headers[k] = v
        return response

    @staticmethod
    def _unauthorized() -> web.Response:
        return _plain(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="Gerrit Code Review"'})

    @staticmethod
    def _options(request: web.Request) -> set[str]:
        opts: set[str] = set()
        for key in ("o", "O"):
            for value in request.query.getall(key, []):
                if key == "O":
                    continue  # hex bitmask form, not supported
                if value not in KNOWN_CHANGE_OPTIONS:
                    raise _RestError(400, f'"{value}" is not a valid value for "-o"')
                opts.add(value)
        return opts

    async def _read_json_body(self, request: web.Request) -> Any:
        ctype = request.headers.get("Content-Type", "")
        mime, _, params = ctype.partition(";")
        if mime.strip().lower() != "application/json":
            raise _RestError(400, "Expected Content-Type: application/json")
        charset = re.search(r"charset\s*=\s*\"?([\w-]+)", params, re.IGNORECASE)
        if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise _RestError(400, f"Unsupported charset: {charset.group(1)}")
        raw = await request.read()
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _RestError(400, f"Invalid JSON: {e}") from None

    async def _route(self, request: web.Request, seg: list[str], user: FakeAccount) -> web.Response:
        method = request.method
        n = len(seg)

        def need(*methods: str) -> None:
            if method not in methods:
                raise _RestError(405, "Method Not Allowed")

        if n >= 2 and seg[0] == "accounts":
            need("GET")
            acc = self._resolve_account(seg[1], user)
            if acc is None:
                raise _RestError(404, f"Account '{seg[1]}' not found")
            if n == 2:
                return self._json(request, acc.info(True))
            if n == 3 and seg[2] == "detail":
                info = {"registered_on": gerrit_timestamp(acc.registered_on), **acc.info(True)}
                return self._json(request, info)
            if n == 3 and seg[2] == "name":
                return self._json(request, acc.name)
            raise _RestError(404, "Not Found")

        if seg[0] == "groups" and n in (3, 4) and seg[2] == "members" and seg[3:] in ([], [""]):
            need("GET")
            members = self.groups.get(seg[1])
            if members is None:  # Gerrit: unknown and invisible groups look the same
                raise _RestError(404, f"Not found: {seg[1]}")
            return self._json(request, [self.accounts[i].info(True) for i in members])

        if seg[0] == "changes" and (n == 1 or (n == 2 and seg[1] == "")):
            need("GET")
            return self._query_changes(request, user)

        if seg[0] == "changes" and n >= 2:
            change = self._find_change(seg[1], user)
            return await self._route_change(request, change, seg[2:], user)

        if seg[0] == "projects" and n >= 2:
            project = self.projects.get(seg[1])
            if project is None:
                raise _RestError(404, f"Not found: {seg[1]}")
            if n >= 4 and seg[2] == "branches":
                need("GET")
                bname = seg[3].removeprefix("refs/heads/")
                branch = project.get(bname)
                if branch is None:
                    raise _RestError(404, f"Not found: {seg[3]}")
                if n == 4:
                    return self._json(request, {"ref": f"refs/heads/{bname}", "revision": branch.revision})
                if n == 7 and seg[4] == "files" and seg[6] == "content":
                    data = branch.files.get(seg[5])
                    if data is None:
                        raise _RestError(404, f"Not found: {seg[5]}")
                    return self._content(request, data, _content_type(seg[5], data))
            if n == 2:
                need("GET")
                return self._json(request, {"id": quote(seg[1], safe=""), "name": seg[1], "state": "ACTIVE"})
        raise _RestError(404, "Not Found")

    async def _route_change(
        self, request: web.Request, change: FakeChange, seg: list[str], user: FakeAccount
    ) -> web.Response:
        method = request.method
        n = len(seg)
        if method != "GET" and not (
            method == "POST" and n == 3 and seg[0] == "revisions" and seg[2] == "review"
        ):
            raise _RestError(405, "Method Not Allowed")
        if n == 0:
            return self._json(request, self._change_info(change, self._options(request), user))
        if n == 1 and seg[0] == "detail":
            opts = self._options(request) | {
                "LABELS",
                "DETAILED_LABELS",
                "DETAILED_ACCOUNTS",
                "MESSAGES",
                "REVIEWER_UPDATES",
            }
            return self._json(request, self._change_info(change, opts, user))
        if n == 1 and seg[0] == "comments":
            return self._json(request, self._comments_map(change.comments, with_patch_set=True))
        if n == 1 and seg[0] == "messages":
            return self._json(request, [self._message_info(m, True) for m in change.messages])
        if n == 1 and seg[0] == "topic":
            if not change.topic:
                return web.Response(status=204)
            return self._json(request, change.topic)
        if n >= 2 and seg[0] == "revisions":
            ps = self._find_revision(change, seg[1])
            return await self._route_revision(request, change, ps, seg[2:], user)
        raise _RestError(404, "Not Found")

    async def _route_revision(
        self, request: web.Request, change: FakeChange, ps: FakePatchSet, seg: list[str], user: FakeAccount
    ) -> web.Response:
        n = len(seg)
        is_current = ps is change.current
        if n == 0:
            info = self._revision_info(
                change, ps, {"CURRENT_COMMIT", "CURRENT_FILES", "ALL_COMMITS", "ALL_FILES"}, is_current
            )
            return self._json(request, info)
        if n == 1 and seg[0] == "review":
            if request.method == "GET":
                opts = {"LABELS", "DETAILED_LABELS", "DETAILED_ACCOUNTS", "CURRENT_REVISION"}
                return self._json(request, self._change_info(change, opts, user))
            return await self._post_review(request, change, ps, user)
        if n == 1 and seg[0] == "commit":
            return self._json(request, self._commit_info(change, ps, with_sha=True))
        if seg[0] == "comments" and (n == 1 or (n == 2 and seg[1] == "")):
            mine = [c for c in change.comments if c.patch_set == ps.number]
            return self._json(request, self._comments_map(mine, with_patch_set=False))
        if n == 2 and seg[0] == "comments":
            for c in change.comments:
                if c.id == seg[1] and c.patch_set == ps.number:
                    return self._json(request, {"path": c.path, **self._comment_info(c, False)})
            raise _RestError(404, f"Not found: {seg[1]}")
        if seg[0] == "files" and (n == 1 or (n == 2 and seg[1] == "")):
            base_ps = self._base_param(request, change)
            if "reviewed" in request.query or "q" in request.query:
                raise _RestError(400, "fake Gerrit: ?reviewed / ?q are not supported")
            return self._json(request, self._file_infos(change, ps, base_ps, include_magic=True))
        if n == 3 and seg[0] == "files":
            path = seg[1]
            if seg[2] == "content":
                return self._file_content(request, change, ps, path)
            if seg[2] == "diff":
                return self._file_diff(request, change, ps, path)
        raise _RestError(404, "Not Found")

    def _base_param(self, request: web.Request, change: FakeChange) -> FakePatchSet | None:
        parent = request.query.get("parent")
        base = request.query.get("base")
        if parent is not None and parent != "1":
            raise _RestError(400, f"invalid parent number: {parent}")
        if base is not None:
            if parent is not None:
                raise _RestError(400, "cannot use base and parent together")
            return self._find_revision(change, base)
        return None

    def _file_content(
        self, request: web.Request, change: FakeChange, ps: FakePatchSet, path: str
    ) -> web.Response:
        if path == COMMIT_MSG:
            # Gerrit's GetContent returns the *current* patch set's full commit message here.
            return self._content(
                request, change.current.commit_message.encode("utf-8"), _content_type(path, None)
            )
        parent = request.query.get("parent")
        if parent is not None:
            if parent != "1":
                raise _RestError(400, f"invalid parent number: {parent}")
            data = ps.base.get(path)
        else:
            data = ps.tree.get(path)
        if data is None:
            raise _RestError(404, f"Not found: {path}")
        return self._content(request, data, _content_type(path, data))

    def _file_diff(
        self, request: web.Request, change: FakeChange, ps: FakePatchSet, path: str
    ) -> web.Response:
        base_ps = self._base_param(request, change)
        whitespace = request.query.get("whitespace", "IGNORE_LEADING_AND_TRAILING")
        if whitespace not in WHITESPACE_VALUES:
            raise _RestError(400, f'"{whitespace}" is not a valid value for "--whitespace"')
        ctx_param = request.query.get("context")
        context: int | None = DEFAULT_CONTEXT
        if ctx_param is not None:
            if ctx_param.upper() in ("ALL", "-1"):
                context = None
            elif ctx_param.isdigit():
                context = int(ctx_param)
            else:
                raise _RestError(400, f'"{ctx_param}" is not a valid value for "--context"')

        if path == COMMIT_MSG:
            new = self._commit_message_file(ps, change)
            old = self._commit_message_file(base_ps, change) if base_ps is not None else None
            change_type = "ADDED" if old is None else "MODIFIED"
            fd = _FileDiff(path, "A" if old is None else "M", None, old, new)
        else:
            diffs = self._diffs_for(change, ps, base_ps)
            found = diffs.get(path)
            if found is None:
                start = base_ps.tree if base_ps is not None else ps.base
                if path in ps.tree:
                    found = _FileDiff(path, "M", None, start.get(path, ps.tree[path]), ps.tree[path])
                else:
                    raise _RestError(404, f"Not found: {path}")
            fd = found
            change_type = {"A": "ADDED", "D": "DELETED", "M": "MODIFIED", "R": "RENAMED"}[fd.status]

        out: dict[str, Any] = {}
        binary = (fd.old is not None and _is_binary(fd.old)) or (fd.new is not None and _is_binary(fd.new))
        old_name = fd.old_path or path
        if fd.old is not None:
            out["meta_a"] = {
                "name": old_name,
                "content_type": _content_type(old_name, fd.old),
                "lines": 0 if binary else len(_raw_lines(fd.old)),
            }
        if fd.new is not None:
            out["meta_b"] = {
                "name": path,
                "content_type": _content_type(path, fd.new),
                "lines": 0 if binary else len(_raw_lines(fd.new)),
            }
        out["change_type"] = change_type
        if path not in MAGIC_PATHS:
            header = [f"diff --git a/{old_name} b/{path}"]
            if fd.status == "A":
                header.append("new file mode 100644")
            elif fd.status == "D":
                header.append("deleted file mode 100644")
            elif fd.status == "R":
                header += [f"rename from {old_name}", f"rename to {path}"]
            old_id = secrets.token_hex(4)[:7] if fd.old is not None else "0000000"
            new_id = secrets.token_hex(4)[:7] if fd.new is not None else "0000000"
            header.append(f"index {old_id}..{new_id}" + (" 100644" if fd.status in ("M", "R") else ""))
            if binary:
                header.append(f"Binary files {'a/' + old_name if fd.old is not None else '/dev/null'} and "
                              f"{'b/' + path if fd.new is not None else '/dev/null'} differ")  # fmt: skip
            else:
                header.append(f"--- {'a/' + old_name if fd.old is not None else '/dev/null'}")
                header.append(f"+++ {'b/' + path if fd.new is not None else '/dev/null'}")
            out["diff_header"] = header
        if binary:
            out["binary"] = True
            out["content"] = []
        else:
            out["content"] = _diff_content(
                fd.old or b"", fd.new or b"", whitespace=whitespace, context=context
            )
        return self._json(request, out)

    async def _post_review(
        self, request: web.Request, change: FakeChange, ps: FakePatchSet, user: FakeAccount
    ) -> web.Response:
        body = await self._read_json_body(request)
        self._validate_review(change, ps, body, user)
        unknown_reviewers = [
            r["reviewer"]
            for r in body.get("reviewers") or []
            if self._resolve_account(r["reviewer"], user) is None
        ]
        if unknown_reviewers:
            errors = {
                "reviewers": {
                    r: {
                        "input": r,
                        "error": f"Account '{r}' not found\n{r} does not identify a registered user or group",
                    }
                    for r in unknown_reviewers
                },
                "error": "error adding reviewer",
            }
            return self._json(request, errors, status=400)
        self.reviews.append(RecordedReview(change.number, ps.revision, body))
        self._apply_review(change, ps, body, user)
        result: dict[str, Any] = {}
        if body.get("labels") is not None:
            result["labels"] = body["labels"]
        reviewer_results: dict[str, Any] = {}
        for r in body.get("reviewers") or []:
            acc = self._resolve_account(r["reviewer"], user)
            if acc is not None:
                reviewer_results[r["reviewer"]] = {"input": r["reviewer"], "reviewers": [acc.info(True)]}
        if reviewer_results:
            result["reviewers"] = reviewer_results
        if body.get("ready"):
            result["ready"] = True
        return self._json(request, result)

    def _query_changes(self, request: web.Request, user: FakeAccount) -> web.Response:
        opts = self._options(request)
        queries = request.query.getall("q", []) or ["status:open"]
        limit_param = request.query.get("n") or request.query.get("limit")
        start_param = request.query.get("S") or request.query.get("start") or "0"
        try:
            limit = int(limit_param) if limit_param is not None else None
            start = int(start_param)
        except ValueError:
            raise _RestError(400, "Invalid n/S parameter") from None
        results = [self._run_query(q, opts, user, limit, start) for q in queries]
        return self._json(request, results if len(queries) > 1 else results[0])

    def _run_query(
        self, query: str, opts: set[str], user: FakeAccount, limit: int | None, start: int
    ) -> list[dict[str, Any]]:
        predicates: list[Callable[[FakeChange], bool]] = []
        pos = 0
        query = query.strip()
        while pos < len(query):
            match = _QUERY_TOKEN_RE.match(query, pos)
            if match is None:
                break
            token = match.group(1)
            pos = match.end()
            while pos < len(query) and query[pos].isspace():
                pos += 1
            if token in ("AND", "and"):
                continue
            if token in ("OR", "or") or token.startswith("(") or token.endswith(")"):
                raise _RestError(400, f"fake Gerrit: unsupported query syntax {token!r} in {query!r}")
            negate = token.startswith("-")
            if negate:
                token = token[1:]
            if token.upper() == "NOT":
                raise _RestError(400, "fake Gerrit: use -operator instead of NOT")
            predicate, limit_override = self._predicate(token, user)
            if limit_override is not None:
                limit = limit_override if limit is None else min(limit, limit_override)
                continue
            assert predicate is not None
            if negate:
                predicates.append(_negate(predicate))
            else:
                predicates.append(predicate)
        matched = [
            c for c in self.changes.values() if self._visible(c, user) and all(p(c) for p in predicates)
        ]
        matched.sort(key=lambda c: (c.updated, c.number), reverse=True)
        matched = matched[start:]
        limit = self.query_limit if limit is None else min(limit, self.query_limit)
        more = len(matched) > limit
        matched = matched[:limit]
        out = [self._change_info(c, opts, user) for c in matched]
        if more and out:
            out[-1]["_more_changes"] = True
        return out

    def _predicate(
        self, token: str, user: FakeAccount
    ) -> tuple[Callable[[FakeChange], bool] | None, int | None]:
        if ":" not in token:
            if token.isdigit():
                return (lambda c: c.number == int(token)), None
            if re.fullmatch(r"I[0-9a-f]{40}", token):
                return (lambda c: c.change_id == token), None
            raise _RestError(400, f"fake Gerrit: unsupported query term {token!r}")
        op, _, raw_value = token.partition(":")
        value = raw_value
        if len(value) >= 2 and (
            (value[0] == '"' and value[-1] == '"') or (value[0] == "{" and value[-1] == "}")
        ):
            value = value[1:-1]
        op = op.lower()
        if op == "status" or (
            op == "is" and value in ("open", "closed", "merged", "abandoned", "new", "pending")
        ):
            status = value.lower()
            groups = {
                "open": {"NEW"}, "pending": {"NEW"}, "new": {"NEW"}, "merged": {"MERGED"},
                "abandoned": {"ABANDONED"}, "closed": {"MERGED", "ABANDONED"},
            }  # fmt: skip
            if status not in groups:
                raise _RestError(400, f"Unrecognized value: {value}")
            return (lambda c: c.status in groups[status]), None
        if op == "is":
            if value == "wip":
                return (lambda c: c.wip), None
            if value == "private":
                return (lambda c: c.private), None
            raise _RestError(400, f"fake Gerrit: unsupported operator is:{value}")
        if op == "project":
            return (lambda c: c.project == value), None
        if op == "branch":
            return (lambda c: c.branch == value.removeprefix("refs/heads/")), None
        if op in ("after", "since"):
            when = _parse_query_time(value)
            return (lambda c: c.updated >= when), None
        if op == "age":
            age = _parse_age(value)
            return (lambda c: c.updated <= self.now() - age), None
        if op in ("before", "until"):
            when = _parse_query_time(value)
            return (lambda c: c.updated <= when), None
        if op == "change":
            if value.isdigit():
                return (lambda c: c.number == int(value)), None
            return (lambda c: c.change_id == value), None
        if op == "owner":
            acc = self._resolve_account(value, user)
            acc_id = acc.account_id if acc else -1
            return (lambda c: c.owner_id == acc_id), None
        if op == "topic":
            return (lambda c: c.topic == value), None
        if op == "limit":
            if not value.isdigit():
                raise _RestError(400, f"Invalid limit: {value}")
            return None, int(value)
        raise _RestError(400, f"fake Gerrit: unsupported operator {op}:")


def _negate(predicate: Callable[[FakeChange], bool]) -> Callable[[FakeChange], bool]:
    return lambda c: not predicate(c)


class _SSHServer(asyncssh.SSHServer):
    """Public-key auth for the bot user only (Gerrit never offers password auth over SSH)."""

    def __init__(self, fake: FakeGerrit) -> None:
        self._fake = fake
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._fake._ssh_conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._fake._ssh_conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._fake.user and self._fake._key_authorized(key)

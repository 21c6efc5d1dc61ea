"""The data every stage of the review pipeline shares.

A :class:`Change` (what to review) goes in; a :class:`Review` (what to post) comes out.
Nothing here touches the network, the disk or an analyzer: adapters build a ``Change`` from
GitHub, Gerrit or a local git range, and publish a ``Review`` their own way.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class FileStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    RENAMED = "renamed"
    COPIED = "copied"
    DELETED = "deleted"
    BINARY = "binary"


class Severity(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


class Category(enum.StrEnum):
    SECURITY = "security"
    QUALITY = "quality"


class FilterMode(enum.StrEnum):
    """reviewdog's filter modes: which findings of a changed file are kept."""

    ADDED = "added"  # a line of the finding was added or modified by the change
    DIFF_CONTEXT = "diff_context"  # a line of the finding lies inside a diff hunk
    FILE = "file"  # anywhere in a changed file
    NOFILTER = "nofilter"  # everything the analyzers report


@dataclass(frozen=True)
class Hunk:
    """One hunk's extent on the new side of the diff, as 1-based inclusive lines."""

    start: int
    end: int

    def __contains__(self, line: object) -> bool:
        return isinstance(line, int) and self.start <= line <= self.end


@dataclass
class ChangedFile:
    """One file of a change, as the analyzers and the filter need it.

    ``content`` is the head version (``None`` for deleted and binary files);
    ``added_lines`` are the new-side line numbers the change added or modified;
    ``hunks`` the new-side extent of each hunk (added lines plus their context);
    ``removed_text`` what the change took out (to tell which names it left unused).
    """

    path: str
    status: FileStatus
    content: bytes | None = None
    old_path: str | None = None
    added_lines: frozenset[int] = frozenset()
    hunks: tuple[Hunk, ...] = ()
    removed_text: tuple[str, ...] = ()  # the old-side lines the change deleted or replaced

    @property
    def reviewable(self) -> bool:
        return self.content is not None and self.status not in (FileStatus.DELETED, FileStatus.BINARY)

    def in_hunk(self, line: int) -> bool:
        return any(line in h for h in self.hunks)

    def text(self) -> str:
        """Head content decoded for display; undecodable bytes are replaced, never fatal."""
        return (self.content or b"").decode("utf-8", errors="replace")


def over_limit(size: int, limit: int) -> str:
    """Why a file was not read, in the one phrase the adapters and the engine use."""
    return f"{size:,} bytes is over the {limit:,}-byte limit (engine.max_file_bytes)"


@dataclass
class Change:
    """What one review looks at: the changed files of one patchset / pull-request head."""

    files: list[ChangedFile]
    base: str = ""
    head: str = ""
    errors: list[str] = field(default_factory=list)  # files the adapter could not fetch, and why

    def file(self, path: str) -> ChangedFile | None:
        return next((f for f in self.files if f.path == path), None)


@dataclass(frozen=True)
class Fix:
    """A mechanical fix as an edit of the head content: lines ``start_line``..``end_line``
    (1-based, inclusive) are replaced by ``replacement`` (whole lines, each ending in a newline
    except, possibly, the file's last). ``original`` is what those lines held when the tool saw
    them: a fix is offered or applied only where they still hold exactly that. Built and checked
    by :mod:`bot.fixes`."""

    description: str
    start_line: int
    end_line: int
    replacement: str
    original: str


@dataclass
class Finding:
    """One analyzer result, normalised. Lines are 1-based and inclusive on the head side."""

    tool: str
    rule_id: str
    path: str
    line: int
    end_line: int
    message: str
    severity: Severity
    confidence: Severity = Severity.MEDIUM
    # Details the message catalog may quote: ``call``, ``name``, ``arg``, ...
    fields: dict[str, str] = field(default_factory=dict)
    fix: Fix | None = None  # the tool's own safe fix, if any (offered only after bot.fixes checks it)

    @property
    def lines(self) -> range:
        return range(self.line, max(self.line, self.end_line) + 1)

    def to_dict(self) -> dict:
        """Plain JSON types (the result cache and the local daemon carry findings so)."""
        return {**asdict(self), "severity": self.severity.value, "confidence": self.confidence.value}

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(
            tool=data["tool"],
            rule_id=data["rule_id"],
            path=data["path"],
            line=data["line"],
            end_line=data["end_line"],
            message=data["message"],
            severity=Severity(data["severity"]),
            confidence=Severity(data["confidence"]),
            fields=dict(data["fields"]),
            fix=Fix(**data["fix"]) if data.get("fix") else None,
        )


@dataclass
class Comment:
    """A finding that survived the filter, rendered and anchored where it will be posted."""

    finding: Finding
    line: int  # the anchor: first changed line of the finding (see bot.filter)
    end_line: int
    in_hunk: bool  # whether ``line`` lies inside a diff hunk (GitHub accepts only those)
    category: Category
    title: str
    body: str
    fingerprint: str
    also_reported_by: list[str] = field(default_factory=list)
    # A checked fix (bot.fixes.offer): only changed lines, the result parses; it covers the
    # comment's lines too, so a platform can post it as a suggestion on the comment's range.
    fix: Fix | None = None

    @property
    def path(self) -> str:
        return self.finding.path

    @property
    def severity(self) -> Severity:
        return self.finding.severity


@dataclass
class Review:
    """What a review posts: inline comments, a summary message, and what went wrong."""

    summary: str
    comments: list[Comment]  # to post inline (capped)
    overflow: list[Comment]  # kept findings beyond the inline cap, listed in the summary only
    errors: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per analyzer, this review only
    reviewed_files: int = 0  # files analyzed (the clean verdict names how many)

    @property
    def all_comments(self) -> list[Comment]:
        return self.comments + self.overflow

    @property
    def security_count(self) -> int:
        return sum(1 for c in self.all_comments if c.category is Category.SECURITY)

    def worst_severity(self) -> Severity | None:
        ranked = sorted((c.severity for c in self.all_comments), key=lambda s: s.rank)
        return ranked[-1] if ranked else None

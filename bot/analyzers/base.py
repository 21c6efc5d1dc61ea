"""What every analyzer shares: the result type and running a tool as a bounded subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bot.model import Category, Finding


class AnalyzerError(RuntimeError):
    """The analyzer as a whole failed (crash, timeout, unreadable output)."""


@dataclass
class AnalyzerResult:
    tool: str
    findings: list[Finding] = field(default_factory=list)
    # Problems that leave part of the change unreviewed, as lines for the summary.
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # For the result cache (bot.cache): the error lines about one file, by path, split into those
    # that follow from the file's bytes alone (a syntax error) and those that may not recur (a
    # per-file timeout). An error line in neither is about the whole run.
    file_errors: dict[str, list[str]] = field(default_factory=dict)
    transient_errors: dict[str, list[str]] = field(default_factory=dict)

    def add_file_error(self, path: str, line: str, cacheable: bool = True) -> None:
        """Report ``line`` about the file at ``path`` (cacheable: it recurs for the same bytes)."""
        self.errors.append(line)
        (self.file_errors if cacheable else self.transient_errors).setdefault(path, []).append(line)

    def to_dict(self) -> dict:
        """Plain JSON types, for the local daemon (bot.server.daemon)."""
        return {
            "tool": self.tool,
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.errors,
            "seconds": self.seconds,
            "file_errors": self.file_errors,
            "transient_errors": self.transient_errors,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AnalyzerResult:
        return cls(
            tool=str(data["tool"]),
            findings=[Finding.from_dict(f) for f in data["findings"]],
            errors=[str(e) for e in data["errors"]],
            seconds=float(data["seconds"]),
            file_errors={str(p): [str(e) for e in lines] for p, lines in data["file_errors"].items()},
            transient_errors={
                str(p): [str(e) for e in lines] for p, lines in data["transient_errors"].items()
            },
        )

    def run_errors(self) -> list[str]:
        """The error lines not tied to one file."""
        attributed = [
            e for lines in (*self.file_errors.values(), *self.transient_errors.values()) for e in lines
        ]
        rest = list(self.errors)
        for line in attributed:
            if line in rest:
                rest.remove(line)
        return rest


@dataclass(frozen=True)
class Traits:
    """What the platform-free stages (bot.filter, bot.render) need to know of a tool's reports,
    declared by the analyzer so that adding one edits neither stage."""

    #: When several tools report one concern on one line, the lowest precedence posts its words.
    precedence: int = 9
    #: The category of a rule the message catalog does not know.
    category: Category = Category.SECURITY
    #: Whether its findings carry a meaningful confidence (named in the comment footer).
    reports_confidence: bool = True
    #: Rule ids that call a name (``fields["name"]``) unused: a change that removed its last use
    #: is responsible for the finding even on a line it did not touch (bot.filter).
    unused_name_rules: frozenset[str] = frozenset()
    #: How code refers to such a name, to find a removed use.
    name_reference: Callable[[str], re.Pattern[str]] | None = None
    #: Whether its checks need the whole module (names defined in one function and used in
    #: another): such a tool never gets a focused copy of a large file (bot.focus).
    whole_module: bool = False


class Analyzer(Protocol):
    name: str
    traits: ClassVar[Traits]

    def wants(self, path: str) -> bool:
        """Whether this analyzer should see the changed file at ``path``."""

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        """Analyze ``paths`` (relative to ``root``); raise AnalyzerError on a whole-run failure."""

    # Optional: ``async close()``, stopping processes kept between reviews.
    # Optional: ``cache_key() -> str``, what besides a file's bytes and path decides the result
    # (tool version, options, rules, this code). Analyzers without it are never cached.


def code_digest(*modules: str) -> str:
    """A digest of the source of ``modules`` (the code that turns a tool's output into results)."""
    import hashlib
    import importlib.util

    h = hashlib.sha256()
    for name in ("bot.model", "bot.analyzers.base", *modules):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        h.update(name.encode() + b"\0")
        if origin and os.path.exists(origin):
            with open(origin, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def tool_identity(name: str, distribution: str) -> str:
    """The installed tool: its distribution's version and the executable's path, size and mtime."""
    import importlib.metadata

    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    try:
        path = tool_path(name)
        st = os.stat(path)
        where = f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    except (AnalyzerError, OSError):
        where = "?"
    return f"{name} {version} {where}"


@dataclass
class ToolOutput:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_tool(
    argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> ToolOutput:
    """Run ``argv`` in its own process group; kill the whole group on timeout.

    A timeout raises AnalyzerError rather than returning: a killed analyzer must never look like
    a clean review.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(proc)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise AnalyzerError(f"timed out after {timeout:g} s") from None
    except FileNotFoundError as exc:  # pragma: no cover - exec failure surfaces at create time
        raise AnalyzerError(f"cannot run {argv[0]}: {exc}") from exc
    return ToolOutput(proc.returncode or 0, stdout, stderr)


async def run_json_tool(
    argv: list[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] | None = None,
) -> tuple[Any, ToolOutput]:
    """Run a tool that reports JSON on stdout; no JSON (or an exit code outside ``ok_codes``) is a crash."""
    out = await run_tool(argv, cwd, timeout, env)
    if ok_codes is not None and out.returncode not in ok_codes:
        raise AnalyzerError(f"crashed: {stderr_tail(out)}")
    try:
        return json.loads(out.stdout), out
    except json.JSONDecodeError:
        raise AnalyzerError(f"crashed: {stderr_tail(out)}") from None


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def rss_bytes(pid: int) -> int:
    """The resident set of process ``pid`` (0 when it is gone), for the warm workers' ceilings."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tool_path(name: str) -> str:
    """The analyzer executable installed beside this Python (the venv), else from PATH."""
    import shutil
    import sys

    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise AnalyzerError(f"{name} is not installed")
    return found


def stderr_tail(output: ToolOutput, limit: int = 300) -> str:
    text = output.stderr.decode("utf-8", errors="replace").strip()
    return text[-limit:] if text else f"exit status {output.returncode}"

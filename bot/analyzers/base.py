"""What every analyzer shares: the result type and running a tool as a bounded subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.model import Finding


class AnalyzerError(RuntimeError):
    """The analyzer as a whole failed (crash, timeout, unreadable output)."""


@dataclass
class AnalyzerResult:
    tool: str
    findings: list[Finding] = field(default_factory=list)
    # Problems that leave part of the change unreviewed, as lines for the summary.
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Analyzer(Protocol):
    name: str

    def wants(self, path: str) -> bool:
        """Whether this analyzer should see the changed file at ``path``."""

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        """Analyze ``paths`` (relative to ``root``); raise AnalyzerError on a whole-run failure."""


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

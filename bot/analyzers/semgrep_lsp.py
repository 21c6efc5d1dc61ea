"""Warm Semgrep: one long-lived ``semgrep lsp`` that keeps the bundled rules parsed between reviews.

A cold ``semgrep scan --experimental`` pays 0.2-0.3 s of start-up and rule parsing per review; the
language server pays it once and then scans a typical file in 5-60 ms. It is the server Semgrep's
editor extensions use, spoken to over stdio. Its known traps (measured here,
see ../shared/FIELD-NOTES.md) and what this module does about each:

- *It ignores ``# nosemgrep``.* A file with ``nosem`` anywhere in it is not answered here: the
  caller gives it to the cold CLI, whose reading of the comment is the reference.
- *It skips ``tests/`` (Semgrep's default ignore list) unless the workspace has its own
  ``.semgrepignore``.* Its workspace is a private directory holding an empty one.
- *It answers stale or misplaced results when a path is reused with new content.* No path is
  reused: every file is scanned at a path of its own, ``<workspace>/<n>/<path>``.
- *It grows by about 1.5 MB per distinct path.* The server is retired after ``max_files`` files
  or when its resident set exceeds ``memory_limit``, and a fresh one starts on the next request.
- *Errors never reach the client* (no diagnostic says "could not parse"). The server logs each
  scan to stderr (``Semgrep errors: ...``, ``Scanned N files``); a scan that logs an error, or
  did not scan exactly the one file, is not answered here either.

Anything not answered here (``None`` for that path) goes to the cold CLI, so the warm path can be
faster but never different; a timeout or a crash kills the server and the file goes cold too.
tests/test_semgrep_warm.py holds the warm findings equal to the cold ones.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
import weakref
from pathlib import Path

from bot.analyzers.base import AnalyzerError, rss_bytes, tool_path

log = logging.getLogger(__name__)

# What the server logs of each scan (its threads may write into one another's lines: search).
_SCANNED = re.compile(r"Scanned (\d+) files?\b")
_ERRORS = "Semgrep errors:"
_SKIPPED = "Semgrep skipped "
_FOUND = re.compile(r"Found (\d+) matches")
_NO_TARGETS = "No targets to scan!"
ENV = {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}
LOG_GRACE_SECONDS = 5.0


class UnreadableLog(RuntimeError):
    """The server's log does not say what this module expects (another Semgrep version?): the
    warm path cannot tell a clean scan from a failed one, so it is not used again."""


class _Scan:
    """What the server's log says about one scan."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.scanned: int | None = None
        self.done = asyncio.Event()


class _Server:
    """One ``semgrep lsp`` process: initialised with the rules, scanning one file at a time.

    JSON-RPC over stdio is spoken here directly (Content-Length framing, about 40 lines): pygls's
    client, tried first, drops the parameterless notifications this server sends
    (``semgrep/rulesRefreshed``) with an error, and only three methods are needed."""

    def __init__(self, rule_files: list[Path], max_target_bytes: int) -> None:
        self.rule_files = rule_files
        self.max_target_bytes = max_target_bytes
        self.root = Path(tempfile.mkdtemp(prefix="patchwarden-semgrep-"))
        (self.root / ".semgrepignore").write_text("")  # an empty ignore list: tests/ included
        self.proc: asyncio.subprocess.Process | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.files = 0
        self.requests = 0
        self._next_id = 0
        self._responses: dict[int, asyncio.Future[dict]] = {}
        self._diagnostics: dict[str, asyncio.Future[list[dict]]] = {}
        self._scans: list[_Scan] = []  # scans whose log is being read, oldest first
        self._in_errors = False
        self._rules_ready = asyncio.Event()
        self._startup_scan = asyncio.Event()  # its scan of the (no) open documents has been logged
        self._tasks: list[asyncio.Task] = []

    async def start(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.proc = await asyncio.create_subprocess_exec(
            tool_path("semgrep"), "lsp",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=self.root, env={**os.environ, **ENV}, start_new_session=True,
        )  # fmt: skip
        self._tasks = [asyncio.create_task(self._read_messages()), asyncio.create_task(self._read_log())]
        uri = self.root.as_uri()
        options = {
            "scan": {
                "configuration": [str(p) for p in self.rule_files],
                "exclude": [],
                "include": [],
                "jobs": 1,
                "maxMemory": 0,
                "maxTargetBytes": self.max_target_bytes,
                "timeout": 30,
                "timeoutThreshold": 3,
                "onlyGitDirty": False,  # every finding, not only those on lines git calls dirty
                "ci": False,
            },
            "metrics": {"enabled": False},
        }
        params = {
            "processId": os.getpid(),
            "rootUri": uri,
            "workspaceFolders": [{"uri": uri, "name": "patchwarden"}],
            "capabilities": {"window": {"workDoneProgress": True}},
            "initializationOptions": options,
        }
        answer = await asyncio.wait_for(self._request("initialize", params), timeout)
        if "error" in answer:
            raise RuntimeError(f"semgrep lsp refused to start: {answer['error']}")
        await self._notify("initialized", {})
        await asyncio.wait_for(self._rules_ready.wait(), timeout)
        await asyncio.wait_for(self._startup_scan.wait(), timeout)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        """Running, and reachable from this event loop (its pipes belong to the one that started it)."""
        return (
            self.proc is not None
            and self.proc.returncode is None
            and self.loop is asyncio.get_running_loop()
            and not self.loop.is_closed()
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def _send(self, message: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self.proc.stdin.drain()

    async def _request(self, method: str, params: dict) -> dict:
        self._next_id += 1
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._responses[self._next_id] = future
        await self._send({"id": self._next_id, "method": method, "params": params})
        return await future

    async def _notify(self, method: str, params: dict) -> None:
        await self._send({"method": method, "params": params})

    async def _read_messages(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        try:
            while True:
                length = None
                while (header := await stdout.readline()).strip():
                    name, _, value = header.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length is None:
                    return  # the server is gone (or spoke garbage): every waiter fails below
                await self._handle(json.loads(await stdout.readexactly(length)))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            for future in (*self._responses.values(), *self._diagnostics.values()):
                if not future.done():
                    future.set_exception(ConnectionError("semgrep lsp went away"))

    async def _handle(self, message: dict) -> None:
        method = message.get("method")
        if "id" in message and method:  # a request of the server's (progress tokens): accept it
            await self._send({"id": message["id"], "result": None})
        elif "id" in message:
            future = self._responses.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
        elif method == "textDocument/publishDiagnostics":
            params = message.get("params") or {}
            future = self._diagnostics.pop(params.get("uri", ""), None)
            if future is not None and not future.done():
                future.set_result(list(params.get("diagnostics") or []))
        elif method == "semgrep/rulesRefreshed":
            self._rules_ready.set()

    async def _read_log(self) -> None:
        """Follow the server's stderr; each scan logs its errors, then how many files it scanned."""
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                for scan in self._scans:
                    scan.done.set()
                return
            line = raw.decode("utf-8", "replace").rstrip("\n")
            scan = self._scans[0] if self._scans else None
            if scan is None:
                if _NO_TARGETS in line:
                    self._startup_scan.set()
                continue
            if _ERRORS in line:
                self._in_errors = True
                if rest := line.split(_ERRORS, 1)[1].strip():
                    scan.errors.append(rest)
            elif _SKIPPED in line:
                self._in_errors = False
            elif self._in_errors and line.strip():
                scan.errors.append(line.strip())
            elif match := _SCANNED.search(line):
                scan.scanned = int(match.group(1))
            if _FOUND.search(line) or _NO_TARGETS in line:
                if _NO_TARGETS in line:
                    scan.scanned = 0
                self._scans.pop(0)
                scan.done.set()

    async def scan(
        self,
        root: Path,
        rels: list[str],
        file_timeout: float,
        deadline: float,
        into: dict[str, list[dict] | None],
    ) -> None:
        """Each file's diagnostics into ``into`` (None where this server's answer is not to be
        trusted), one file at a time, each within ``file_timeout`` and all before ``deadline``.

        The server scans a file when it is opened, but a path it has not seen yet is not among
        its targets then: that scan logs "No targets" and answers nothing, while the server walks
        its workspace again. So every file of the request is written first; the first one opened
        is then saved to be scanned for real, and the others are known by the time they open."""
        self.files += len(rels)
        self.requests += 1
        job = self.root / str(self.requests)
        for rel in rels:
            (job / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, job / rel)
        try:
            for rel in rels:
                uri = (job / rel).as_uri()
                limit = min(time.monotonic() + file_timeout, deadline)
                # The server reads the file from disk; the text sent is not used.
                document = {"uri": uri, "languageId": "", "version": 1, "text": ""}
                scan, diagnostics = await self._scan_once(
                    uri, rel, "textDocument/didOpen", {"textDocument": document}, limit
                )
                if scan.scanned == 0:
                    scan, diagnostics = await self._scan_once(
                        uri, rel, "textDocument/didSave", {"textDocument": {"uri": uri}}, limit
                    )
                await self._notify("textDocument/didClose", {"textDocument": {"uri": uri}})
                if scan.errors or scan.scanned != 1:
                    log.info(
                        "semgrep lsp: %s: scanned %s, errors %s: the CLI decides",
                        rel,
                        scan.scanned,
                        scan.errors,
                    )
                    into[rel] = None
                else:
                    into[rel] = diagnostics
        finally:
            self._diagnostics.clear()
            shutil.rmtree(job, ignore_errors=True)

    async def _scan_once(
        self, uri: str, rel: str, method: str, params: dict, deadline: float
    ) -> tuple[_Scan, list[dict]]:
        future: asyncio.Future[list[dict]] = asyncio.get_running_loop().create_future()
        self._diagnostics[uri] = future
        scan = _Scan()
        self._scans.append(scan)
        await self._notify(method, params)
        diagnostics = await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
        try:  # the log of a scan is written before its diagnostics are sent
            await asyncio.wait_for(scan.done.wait(), LOG_GRACE_SECONDS)
        except TimeoutError:
            raise UnreadableLog(f"no scan log from semgrep lsp for {rel}") from None
        return scan, diagnostics

    async def close(self) -> None:
        reachable = self.alive
        self.kill()
        if reachable and self.proc is not None:
            await self.proc.wait()
            for task in self._tasks:
                task.cancel()
        _LIVE.discard(self)
        shutil.rmtree(self.root, ignore_errors=True)


class SemgrepServer:
    """The warm path of :class:`bot.analyzers.semgrep.SemgrepAnalyzer`: one server per engine,
    started on first use, restarted when the rules change, retired when it grew too big."""

    def __init__(
        self,
        max_files: int = 300,
        memory_limit: int = 1 << 30,
        start_timeout: float = 60.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.max_files = max_files
        self.memory_limit = memory_limit
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._server: _Server | None = None
        self._rules_key: str | None = None
        self._lock = asyncio.Lock()
        self.started = 0  # servers started so far (for tests and the bench)
        self.failed = False  # starting failed: the CLI does everything from then on

    async def scan(
        self,
        rule_files: list[Path],
        rules_key: str,
        max_target_bytes: int,
        root: Path,
        paths: list[str],
        timeout: float,
    ) -> dict[str, list[dict]]:
        """Diagnostics for each of ``paths`` (under ``root``) this server could answer for;
        the rest are for the CLI. Never raises for a server's failure."""
        deadline = time.monotonic() + timeout
        results: dict[str, list[dict] | None] = {}
        async with self._lock:
            wanted = [rel for rel in paths if b"nosem" not in (root / rel).read_bytes().lower()]
            server = await self._server_for(rule_files, rules_key, max_target_bytes) if wanted else None
            if server is not None:
                try:
                    await server.scan(root, wanted, self.request_timeout, deadline, results)
                except UnreadableLog as exc:
                    log.warning("%s: the CLI runs Semgrep from now on", exc)
                    self.failed = True
                    await self._retire()
                except (TimeoutError, OSError, RuntimeError, ConnectionError) as exc:
                    log.warning("semgrep lsp failed (%r): restarting it; the CLI decides", exc)
                    await self._retire()
                else:
                    pid = server.pid
                    if server.files >= self.max_files or (pid and rss_bytes(pid) > self.memory_limit):
                        await self._retire()
        return {rel: found for rel, found in results.items() if found is not None}

    async def _server_for(
        self, rule_files: list[Path], rules_key: str, max_target_bytes: int
    ) -> _Server | None:
        if self._server is not None and (not self._server.alive or self._rules_key != rules_key):
            await self._retire()
        if self._server is None:
            server = _Server(rule_files, max_target_bytes)
            _LIVE.add(server)  # killed at exit even if starting it fails half-way
            try:
                await server.start(self.start_timeout)
            except (TimeoutError, OSError, RuntimeError, AnalyzerError) as exc:
                log.warning("semgrep lsp did not start (%r): the CLI runs Semgrep", exc)
                await server.close()
                self.failed = True
                return None
            self._server, self._rules_key = server, rules_key
            _LIVE.add(server)
            self.started += 1
        return self._server

    async def _retire(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.close()

    async def close(self) -> None:
        async with self._lock:
            await self._retire()


_LIVE: weakref.WeakSet[_Server] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    """Servers run in sessions of their own (so that a kill reaches all of Semgrep): end them."""
    for server in list(_LIVE):
        server.kill()
        shutil.rmtree(server.root, ignore_errors=True)

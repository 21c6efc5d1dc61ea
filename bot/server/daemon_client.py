"""The client side of the local daemon (bot.server.daemon), light enough for every ``check``.

It speaks HTTP over the daemon's Unix socket with the standard library's ``http.client`` (in a
thread): ``patchwarden check`` then pays a few milliseconds to ask, where importing aiohttp
would cost more than the warm analyzers save on a small change.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.analyzers import Analyzer, AnalyzerError, AnalyzerResult
from bot.config import EngineSettings
from bot.pipeline import Engine

log = logging.getLogger(__name__)

REMOTE = frozenset({"semgrep", "bandit"})  # the analyzers whose start-up the daemon saves
CONNECT_TIMEOUT = 0.5
START_TIMEOUT = 30.0


class DaemonUnavailable(Exception):
    """No usable daemon: the caller runs the analyzer itself."""


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "patchwarden" if base else Path(tempfile.gettempdir()) / f"patchwarden-{os.getuid()}"


def private_dir(path: Path, create: bool) -> Path:
    """``path``, a directory of this user's that nobody else may enter, or DaemonUnavailable."""
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=True)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise DaemonUnavailable(f"{path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise DaemonUnavailable(f"{path} is not a private directory of this user: not used")
    return path


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


# ------------------------------------------------------------------------------------------------
# The client side


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("patchwarden", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        self.sock = sock


class DaemonClient:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or socket_path()

    def _call(self, method: str, route: str, body: dict | None, timeout: float) -> dict:
        private_dir(self.path.parent, create=False)
        connection = _UnixConnection(self.path, timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, route, body=payload, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise DaemonUnavailable(f"no daemon at {self.path}: {exc!r}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise DaemonUnavailable(f"daemon refused: {answer.get('refused', response.status)}")
        return answer

    async def call(self, method: str, route: str, body: dict | None = None, timeout: float = 10.0) -> dict:
        return await asyncio.to_thread(self._call, method, route, body, timeout)

    async def analyze(
        self, analyzer: Analyzer, root: Path, paths: list[str], timeout: float
    ) -> AnalyzerResult:
        body = {
            "analyzer": analyzer.name,
            "key": analyzer.cache_key() if hasattr(analyzer, "cache_key") else None,
            "root": str(root),
            "paths": paths,
            "timeout": timeout,
        }
        answer = await self.call("POST", "/analyze", body, timeout=timeout + 10)
        if "analyzer_error" in answer:
            raise AnalyzerError(answer["analyzer_error"])
        return AnalyzerResult.from_dict(answer["result"])

    async def running(self) -> bool:
        try:
            await self.call("GET", "/status", timeout=2)
        except DaemonUnavailable:
            return False
        return True

    async def start(self, idle_seconds: float, config: Path | None = None) -> bool:
        """Start a detached daemon unless one answers; True once one answers."""
        if await self.running():
            return True
        log_dir = private_dir(self.path.parent, create=True)
        argv = [sys.executable, "-m", "bot", "daemon", "run", "--idle", str(idle_seconds)]
        if config is not None:
            argv += ["--config", str(config)]
        with open(log_dir / "daemon.log", "ab") as out:
            subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if await self.running():
                return True
            await asyncio.sleep(0.1)
        return False


class DaemonAnalyzer:
    """``local``, run by the daemon when one answers (the same analyzer there, warm); by itself
    when not. Implements the Analyzer protocol."""

    def __init__(self, local: Analyzer, client: DaemonClient) -> None:
        self.local = local
        self.client = client
        self.name = local.name
        self.traits = local.traits
        self.used_daemon = 0

    def wants(self, path: str) -> bool:
        return self.local.wants(path)

    async def run(self, root: Path, paths: list[str], timeout: float) -> AnalyzerResult:
        try:
            result = await self.client.analyze(self.local, root, paths, timeout)
        except DaemonUnavailable as exc:
            log.debug("%s runs here: %s", self.name, exc)
            return await self.local.run(root, paths, timeout)
        self.used_daemon += 1
        return result


def engine_for_check(settings: EngineSettings, client: DaemonClient | None) -> Engine:
    """The CLI's engine: the daemon's warm analyzers where ``client`` is given, else all cold."""
    engine = Engine.from_settings(settings)
    if client is not None:
        engine.analyzers = [DaemonAnalyzer(a, client) if a.name in REMOTE else a for a in engine.analyzers]  # type: ignore[misc]
    return engine

"""The local daemon: warm analyzers for ``patchwarden check``, as ``dmypy`` is for mypy.

``patchwarden check`` is a one-off process: every run pays Semgrep's and Bandit's start-up. The
daemon keeps the service's warm analyzers (one ``semgrep lsp``, Bandit's worker processes) for
the developer's own reviews:

- ``patchwarden check --daemon`` starts it on demand (detached, exits after ``--idle`` seconds
  without a request) and uses it; a plain ``patchwarden check`` uses it if one is running;
- ``patchwarden daemon status`` / ``stop`` / ``run`` (in the foreground).

Anything wrong (no daemon, a daemon of another version of the analyzers or rules, a daemon that
fails or does not answer in time) and ``check`` runs the analyzer itself: the same review, cold.

It is not the service: the service's port may face a network, and analyzing a directory named in
a request is only safe for the user who owns both. So the daemon listens on a Unix socket in a
directory only its user can enter (``$XDG_RUNTIME_DIR/patchwarden`` or
``/tmp/patchwarden-<uid>``), checked before it is used on either side, and only reads workspaces
owned by that user. ruff is not sent to it: it starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.analyzers import Analyzer, AnalyzerError, AnalyzerResult
from bot.config import EngineSettings
from bot.pipeline import Engine
from bot.workspace import UnsafePathError, safe_relative

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
# The daemon


class Daemon:
    def __init__(self, settings: EngineSettings, idle_seconds: float) -> None:
        self.engine = Engine.from_settings(settings, warm=True)
        self.analyzers = {a.name: a for a in self.engine.analyzers if a.name in REMOTE}
        self.idle_seconds = idle_seconds
        self.last_request = time.monotonic()
        self.requests = 0
        self.stopping = asyncio.Event()

    def keys(self) -> dict[str, str]:
        return {name: a.cache_key() for name, a in self.analyzers.items() if hasattr(a, "cache_key")}

    async def analyze(self, request: web.Request) -> web.Response:
        self.last_request = time.monotonic()
        try:
            body = await request.json()
            analyzer = self.analyzers[body["analyzer"]]
            root = Path(body["root"])
            paths = [str(safe_relative(p)) for p in body["paths"]]
            timeout = float(body["timeout"])
        except (ValueError, KeyError, TypeError, UnsafePathError) as exc:
            return web.json_response({"refused": f"bad request: {exc!r}"}, status=400)
        if body.get("key") != self.keys().get(analyzer.name):
            return web.json_response({"refused": "other analyzer version or rules"}, status=409)
        try:
            st = os.lstat(root)
        except OSError as exc:
            return web.json_response({"refused": f"{root}: {exc.strerror}"}, status=400)
        if not root.is_absolute() or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return web.json_response({"refused": f"{root} is not a directory of this user"}, status=403)
        self.requests += 1
        try:
            result = await analyzer.run(root, paths, timeout)
        except AnalyzerError as exc:
            return web.json_response({"analyzer_error": str(exc)})
        finally:
            self.last_request = time.monotonic()
        return web.json_response({"result": result.to_dict()})

    async def status(self, _request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid(), "requests": self.requests, "keys": self.keys()})

    async def stop(self, _request: web.Request) -> web.Response:
        self.stopping.set()
        return web.json_response({"stopping": True})

    async def serve(self, path: Path) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/analyze", self.analyze)
        app.router.add_get("/status", self.status)
        app.router.add_post("/stop", self.stop)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        private_dir(path.parent, create=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead daemon's socket (a live one answered, or we were not started)
        site = web.UnixSite(runner, str(path))
        await site.start()
        os.chmod(path, 0o600)
        log.info("patchwarden daemon %d listening on %s", os.getpid(), path)
        try:
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 5)
                if time.monotonic() - self.last_request > self.idle_seconds:
                    log.info("idle for %.0f s: stopping", self.idle_seconds)
                    break
        finally:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            await self.engine.close()


def run_daemon(settings: EngineSettings, idle_seconds: float, path: Path | None = None) -> int:
    daemon = Daemon(settings, idle_seconds)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stopping.set)
        await daemon.serve(path or socket_path())

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------------------------------------
# The client side


class DaemonClient:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or socket_path()

    async def call(self, method: str, route: str, body: dict | None = None, timeout: float = 10.0) -> dict:
        private_dir(self.path.parent, create=False)
        connector = aiohttp.UnixConnector(path=str(self.path))
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=limits) as session,
                session.request(method, f"http://patchwarden{route}", json=body) as resp,
            ):
                answer = await resp.json()
                if resp.status != 200:
                    raise DaemonUnavailable(f"daemon refused: {answer.get('refused', resp.status)}")
                return answer
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise DaemonUnavailable(f"no daemon at {self.path}: {exc!r}") from None

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

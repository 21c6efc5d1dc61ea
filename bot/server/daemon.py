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
import time
from pathlib import Path

from aiohttp import web

from bot.analyzers import AnalyzerError
from bot.config import EngineSettings
from bot.pipeline import Engine
from bot.server.daemon_client import REMOTE, private_dir, socket_path
from bot.workspace import UnsafePathError, safe_relative

log = logging.getLogger(__name__)


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

"""Running the real service for end-to-end tests: in-process on a loopback port, or as the
real `patchwarden serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot.config import Settings, load_settings
from bot.server.app import SERVICE, Service, create_app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "test-webhook-secret"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def make_settings(tmp_path: Path, overrides: dict[str, Any]) -> Settings:
    """Embedded defaults + ``overrides`` (as an operator's YAML file would give them)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "server.yaml"
    overrides = {"server": {"data_dir": str(tmp_path / "data"), "retry_base_delay": 0.2}, **overrides}
    path.write_text(yaml.safe_dump(overrides))
    return load_settings(path, environ={})


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[tuple[str, Service]]:
    """The real aiohttp application on 127.0.0.1:<ephemeral>."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app[SERVICE]
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`python -m bot serve` as a child process, configured by a YAML file and environment."""

    def __init__(self, config: Path, env: dict[str, str], *args: str, log_name: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.with_name(log_name) if log_name else config.with_suffix(".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", str(self.port), *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"serve did not come up: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash or an OOM kill."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def github_serve_setup(
    work: Path, api_url: str, token: str, name: str = "serve", **config: Any
) -> tuple[Path, dict[str, str]]:
    """The config file and environment a token-mode GitHub `serve` runs with, as in production:
    secrets and endpoints from the environment, the rest from YAML (``config`` is merged in)."""
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "github": {"write_interval": 0, **config.get("github", {})}}))
    env = {
        "PATCHWARDEN_GITHUB_WEBHOOK_SECRET": SECRET,
        "PATCHWARDEN_GITHUB_API_URL": api_url,
        "PATCHWARDEN_GITHUB_TOKEN": token,
        "PATCHWARDEN_DATA_DIR": str(work / "data"),
    }
    return path, env


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_github(
    base_url: str,
    event: str,
    payload: dict[str, Any] | bytes,
    delivery: str,
    secret: str = SECRET,
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        **headers,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/webhooks/github", data=body, headers=sent) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``predicate`` (plain or async) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def jobs_finished(service: Service, count: int) -> bool:
    """Whether ``count`` jobs have ended (done, failed or superseded) and none is pending or running."""
    counts = await service.queue.counts()
    return not counts.get("pending") and not counts.get("running") and sum(counts.values()) == count


async def wait_idle(service: Service, timeout: float = 60) -> dict[str, int]:
    """Until no job is pending or running; returns the queue's counts by state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = await service.queue.counts()
        if not counts.get("pending") and not counts.get("running"):
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError(f"queue not idle: {await service.queue.counts()}")

"""A real ``redis-server`` for the tests: Debian's package, started on a free loopback port with
persistence off (``--save '' --appendonly no``), stopped at the end of the session."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.service import free_port


def start_redis(work: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (see README)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work), "--databases", "64", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=(work / "redis.log").open("ab"),
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(work / 'redis.log').read_text()}") from None
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("redis-server did not answer within 5 s")
    client.close()
    return proc, url


def redis_session(work: Path) -> Iterator[str]:
    proc, url = start_redis(work)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_prefix() -> str:
    """Keys of one test only, so tests share the session's server without seeing each other."""
    return f"t{uuid.uuid4().hex[:12]}:"

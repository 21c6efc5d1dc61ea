"""Shared test helpers: real git repositories and the real review engine."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.pipeline import Engine

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class GitRepo:
    """A throw-away repository; ``commit({path: content or None})`` writes, deletes and commits."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.root), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, files: dict[str, bytes | str | None], message: str = "change") -> str:
        for path, content in files.items():
            target = self.root / path
            if content is None:
                self.git("rm", "-q", "--", path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            self.git("add", "--", path)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[], GitRepo]:
    counter = iter(range(100))

    def factory() -> GitRepo:
        root = tmp_path / f"repo{next(counter)}"
        root.mkdir()
        return GitRepo(root)

    return factory


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(environ={})


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    return Engine.from_settings(settings.engine)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    """A real redis-server on a loopback port for the session (tests/redis_server.py)."""
    from tests.redis_server import redis_session

    yield from redis_session(tmp_path_factory.mktemp("redis"))

"""The local daemon (bot.server.daemon): ``patchwarden check`` with warm analyzers gives the very
review it gives cold, and falls back to cold, silently, whenever the daemon cannot be trusted.
Real processes: the ``patchwarden`` CLI, the daemon it starts, real Semgrep/Bandit/ruff."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.analyzers import SemgrepAnalyzer
from bot.config import EngineSettings
from bot.pipeline import Engine
from bot.server.daemon_client import DaemonClient, DaemonUnavailable
from tests.test_check_cli import three_patterns_repo  # noqa: F401 - a fixture

NOVA = """import os
import subprocess
import yaml


def load(path, cmd):
    data = yaml.load(open(path))
    subprocess.call("ls " + cmd, shell=True)
    return data
"""


@pytest.fixture
def runtime(tmp_path: Path):
    """A private runtime directory of this test's own: the daemon's socket lives there."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run)}
    yield env
    subprocess.run([sys.executable, "-m", "bot", "daemon", "stop"], env=env, timeout=30, capture_output=True)


def check(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", "--format", "json", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def status(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", "daemon", "status"], env=env, capture_output=True, text=True, timeout=30
    )


def reviewed(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_check_with_the_daemon_reviews_as_without_it(make_repo, runtime):
    repo = make_repo()
    repo.commit({"nova/a.py": "import os\n"}, "base")
    repo.commit({"nova/a.py": NOVA, "tools/run.sh": "curl -k https://example.com/x.sh | sh\n"}, "change")
    cold = reviewed(check(repo.root, runtime, "--no-daemon"))
    assert len(cold["comments"]) >= 4
    assert "not running" in status(runtime).stdout
    started = reviewed(check(repo.root, runtime, "--daemon"))  # starts it, then uses it
    assert started == cold
    assert "pid" in status(runtime).stdout
    again = reviewed(check(repo.root, runtime))  # a running daemon is used without asking
    assert again == cold
    requests = int(status(runtime).stdout.split(",")[1].split()[0])
    assert requests == 4  # Semgrep and Bandit, twice: ruff stays local


def test_no_daemon_a_stale_socket_or_an_open_directory_mean_cold(make_repo, runtime, tmp_path):
    repo = make_repo()
    repo.commit({"nova/a.py": "import os\n"}, "base")
    repo.commit({"nova/a.py": NOVA}, "change")
    cold = reviewed(check(repo.root, runtime, "--no-daemon"))
    run = Path(runtime["XDG_RUNTIME_DIR"]) / "patchwarden"
    run.mkdir(mode=0o700)
    (run / "daemon.sock").write_text("")  # left behind by a killed daemon
    assert reviewed(check(repo.root, runtime)) == cold
    os.chmod(run, 0o755)  # others may enter: never trusted, never connected to
    with pytest.raises(DaemonUnavailable, match="not a private directory"):
        _call_status(run / "daemon.sock")
    assert reviewed(check(repo.root, runtime)) == cold


def _call_status(path: Path) -> None:
    asyncio.run(DaemonClient(path).call("GET", "/status"))


async def test_the_daemon_refuses_other_rules_and_paths_outside_the_workspace(tmp_path, runtime):
    socket = Path(runtime["XDG_RUNTIME_DIR"]) / "patchwarden" / "daemon.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "daemon", "run", "--idle", "60"],
        env=runtime,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = DaemonClient(socket)
        deadline = time.monotonic() + 30
        while not await client.running():
            assert time.monotonic() < deadline, "the daemon did not start"
            await asyncio.sleep(0.1)
        work = tmp_path / "work"
        (work / "nova").mkdir(parents=True)
        (work / "nova" / "a.py").write_text(NOVA)
        bundled = next(a for a in Engine.from_settings(EngineSettings()).analyzers if a.name == "semgrep")
        result = await client.analyze(bundled, work, ["nova/a.py"], 60)
        assert {f.rule_id for f in result.findings} >= {"yaml-unsafe-load"}
        other_rules = tmp_path / "rules"
        other_rules.mkdir()
        (other_rules / "one.yaml").write_text(
            "rules:\n  - id: one\n    languages: [python]\n    severity: INFO\n    message: m\n    pattern: yaml.load(...)\n"
        )
        with pytest.raises(DaemonUnavailable, match="other analyzer version or rules"):
            await client.analyze(SemgrepAnalyzer(other_rules), work, ["nova/a.py"], 60)
        with pytest.raises(DaemonUnavailable, match="bad request"):
            await client.analyze(bundled, work, ["../etc/passwd"], 60)
        with pytest.raises(DaemonUnavailable, match="not a directory"):
            await client.analyze(bundled, work / "nova" / "a.py", ["a.py"], 60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not socket.exists()  # a stopped daemon takes its socket with it

"""pre-commit (from PyPI, run offline): the hook of `.pre-commit-hooks.yaml` reviews the staged
change on `git commit` and refuses the commit at the fail level, in a temporary repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

PRE_COMMIT = str(Path(sys.executable).parent / "pre-commit")


def local_hook() -> dict:
    """The published hook as a ``repo: local`` one: the same id, entry, options, run with the
    patchwarden of this environment (``language: system``), since installing the package from
    the repository needs the network."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    program, *rest = hook["entry"].split()
    assert program == "patchwarden"
    entry = " ".join([str(Path(sys.executable).parent / "patchwarden"), *rest])
    return {**hook, "entry": entry, "language": "system", "args": ["--fail-level", "low"]}


def test_pre_commit_hook_reviews_the_staged_change_and_refuses_the_commit(make_repo, tmp_path):
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    subprocess.run(
        [PRE_COMMIT, "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")], check=True, env=env
    )
    repo = make_repo()
    config = yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local_hook()]}]})
    repo.commit({".pre-commit-config.yaml": config, "a.py": "X = 1\n"}, "base")
    subprocess.run([PRE_COMMIT, "install"], cwd=repo.root, check=True, env=env, capture_output=True)
    before = repo.git("rev-parse", "HEAD")

    (repo.root / "b.py").write_text("import shutil\n\n\ndef f():\n    return 1\n")
    repo.git("add", "b.py")
    (repo.root / "a.py").write_text("X = 2\nimport glob\n")  # not staged: not reviewed
    refused = subprocess.run(
        ["git", "-C", str(repo.root), "commit", "-m", "add b"], env=env, capture_output=True, text=True
    )
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    assert repo.git("rev-parse", "HEAD") == before
    assert "b.py:1" in out and "**Unused import**" in out and "`shutil`" in out
    assert "a.py" not in out.replace(".pre-commit-config.yaml", "")
    assert (repo.root / "a.py").read_text() == "X = 2\nimport glob\n", "unstaged work is kept"

    (repo.root / "b.py").write_text("def f():\n    return 1\n")
    repo.git("add", "b.py")
    passed = subprocess.run(
        ["git", "-C", str(repo.root), "commit", "-m", "add b"], env=env, capture_output=True, text=True
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "No security defects are detected in the code." in passed.stdout + passed.stderr

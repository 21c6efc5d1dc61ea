"""``patchwarden check --demo``: a throw-away repository with one realistic change to review."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bot.gitlocal import git

BASE = '''"""Volume helpers (demo module, modelled on nova/privsep)."""

import os
import subprocess

from nova import utils


def resize(path, size):
    utils.execute('qemu-img', 'resize', path, size)


def wipe(device):
    subprocess.call(['shred', '-n', '1', device])
'''

HEAD = '''"""Volume helpers (demo module, modelled on nova/privsep)."""

import os
import shutil
import subprocess

import requests
from oslo_log import log as logging

from nova import utils

LOG = logging.getLogger(__name__)


def resize(path, size):
    utils.execute('qemu-img', 'resize', path, size)


def wipe(device):
    subprocess.call(['shred', '-n', '1', device])


def run_hook(cmd):
    utils.execute(cmd, run_as_root=True)


def mount(device, target, password):
    LOG.debug("Mounting %s with password %s", device, password)
    subprocess.call("mount %s %s" % (device, target), shell=True)


def fetch_image(name):
    try:
        return requests.get("http://images.internal.example.net/" + name, verify=False)
    except Exception:
        pass
'''


def make_demo_repo() -> Path:
    """Create a repository whose last commit adds typical defects next to clean old code."""
    root = Path(tempfile.mkdtemp(prefix="patchwarden-demo-"))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "demo@example.com")
    git(root, "config", "user.name", "Demo")
    (root / "nova").mkdir()
    (root / "nova" / "volume_utils.py").write_text(BASE)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Add volume helpers")
    (root / "nova" / "volume_utils.py").write_text(HEAD)
    git(root, "commit", "-q", "-am", "Add mount and image fetch helpers")
    return root

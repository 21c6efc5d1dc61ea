"""Service latency benchmark: webhook / event in, review out, against the fakes on loopback.

Run by hand from the repository root (it imports the fakes and helpers from ``tests``)::

    PYTHONPATH=. .venv/bin/python bench/service.py [--runs 20] [--burst 20]

What it measures (all on 127.0.0.1; nothing leaves the machine):

* GitHub: the real ``python -m bot serve`` process (``tests.service.ServeProcess``), configured
  by ``PATCHWARDEN_GITHUB_*`` / ``PATCHWARDEN_DATA_DIR`` and a YAML file with
  ``github: {write_interval: 0}``, against ``FakeGitHub`` in token mode running in this process.
  Every pull request carries the same typical change (four Nova-like Python files, a few hundred
  added lines, a handful of findings). One unmeasured warm-up PR first (its figure is printed
  apart as the cold start), then ``--runs`` PRs one at a time -- each webhook is sent only once
  the previous review and check run are done and the queue is idle, so the latency contains no
  queueing -- then ``--burst`` webhooks sent at once.

  - handler: the client-side round trip of the signed ``pull_request.opened`` POST (the 202);
  - webhook -> review: from just before the POST to the moment the fake records the review (its
    ``POST /pulls/{n}/reviews`` handler appends it to ``reviews``, which is swapped for a list
    that stamps each append with this process's monotonic clock);
  - webhook -> check run: to the arrival of the ``PATCH`` that completes the check run;
  - burst: handler times while ``--burst`` POSTs are in flight together, each PR's latency, and
    the time from the first POST until the last of the reviews is posted.

* Gerrit: ``FakeGerrit`` (REST + SSH ``stream-events``) and the real ``serve`` process on the SSH
  event source. ``--runs`` changes are created one at a time; latency runs from the moment the
  ``patchset-created`` event is handed to the stream (``FakeGerrit.emit``) to the moment the fake
  records the review.

Where the time goes is read from the fakes' request stamps (webhook -> first API call of the job,
first API call -> review) and from the ``analyzers {...}`` timings the service logs per job.

Percentiles interpolate linearly between samples; with 20 samples p99 is close to the maximum.
The fakes, the benchmark and the service share this machine's CPUs. Bounded: every wait has a
timeout, and no new run starts after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import datetime as dt
import difflib
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from bot.config import load_settings
from tests.fakes.gerrit import FakeGerrit, generate_ssh_keypair
from tests.fakes.github import FakeGitHub
from tests.service import ServeProcess, fixture, github_serve_setup, post_github

TOKEN = "ghp_patchwarden_bench_token"
GERRIT_USER, GERRIT_PASSWORD = "patchwarden", "http-secret"
GERRIT_PROJECT = "openstack/nova"
REVIEW_TIMEOUT = 120.0  # seconds to wait for any one review

T = TypeVar("T")

# ------------------------------------------------------------------------------------------------
# The typical change: four Nova-like files (two modified, two added), ~340 added lines, a handful
# of findings (unused import, shell=True with a formatted command, MD5 on a token, a token
# compared with ==, a password in a debug log, verify=False, yaml.load). The tests file's asserts
# are skipped by the default path rules.
# ------------------------------------------------------------------------------------------------

LICENSE = """\
# Copyright 2024 OpenStack Foundation
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
"""

FS_BASE = (
    LICENSE
    + '''
"""Filesystem helpers that need root, run in the privsep daemon."""

import os

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import fileutils

import nova.privsep


LOG = logging.getLogger(__name__)


@nova.privsep.sys_admin_pctxt.entrypoint
def mount(fstype, export, mountpoint, options=None):
    cmd = ['mount']
    if fstype:
        cmd.extend(['-t', fstype])
    if options is not None:
        cmd.extend(options)
    cmd.extend([export, mountpoint])
    return processutils.execute(*cmd)


@nova.privsep.sys_admin_pctxt.entrypoint
def umount(mountpoint):
    processutils.execute('umount', mountpoint, attempts=3, delay_on_retry=True)


@nova.privsep.sys_admin_pctxt.entrypoint
def lvremove(path):
    processutils.execute('lvremove', '-f', path, attempts=3)


@nova.privsep.sys_admin_pctxt.entrypoint
def blockdev_size(path):
    out, _err = processutils.execute('blockdev', '--getsize64', path)
    return int(out.strip())


@nova.privsep.sys_admin_pctxt.entrypoint
def clear(path, volume_size, shred=False):
    cmd = ['shred']
    if shred:
        cmd.extend(['-n3'])
    else:
        cmd.extend(['-n0', '-z'])
    cmd.extend(['-s%d' % volume_size, path])
    processutils.execute(*cmd)


def ensure_mountpoint(mountpoint):
    if not os.path.isdir(mountpoint):
        fileutils.ensure_tree(mountpoint)
'''
)

FS_HEAD = (
    FS_BASE.replace("import os\n", "import os\nimport shutil\n")
    + '''

@nova.privsep.sys_admin_pctxt.entrypoint
def mount_quobyte(volume, mnt_base, configfile=None):
    """Mount a Quobyte volume with the mount.quobyte helper."""
    fileutils.ensure_tree(mnt_base)
    command = 'mount.quobyte --disable-xattrs %s %s' % (volume, mnt_base)
    if configfile:
        command += ' -c %s' % configfile
    LOG.debug('Mounting volume %s at mount point %s', volume, mnt_base)
    processutils.execute(command, shell=True)


@nova.privsep.sys_admin_pctxt.entrypoint
def resize2fs(image, check_exit_code, size=None):
    if size:
        cmd = ['resize2fs', image, size]
    else:
        cmd = ['resize2fs', image]
    processutils.execute(*cmd, check_exit_code=check_exit_code)


@nova.privsep.sys_admin_pctxt.entrypoint
def e2fsck(image, flags='-fp'):
    processutils.execute('e2fsck', flags, image, check_exit_code=[0, 1, 2])


def list_partitions(device):
    """Return (number, start, size, fstype, name, flags) for each partition of device."""
    out, _err = processutils.execute('parted', '--script', '--machine', device, 'unit', 's', 'print')
    lines = [line for line in out.split('\\n') if line]
    partitions = []
    LOG.debug('Partitions:')
    for line in lines[2:]:
        line = line.rstrip(';')
        num, start, end, size, fstype, name, flags = line.split(':')
        num = int(num)
        start = int(start.rstrip('s'))
        end = int(end.rstrip('s'))
        size = int(size.rstrip('s'))
        LOG.debug('  %(num)s: %(fstype)s %(size)d sectors', {'num': num, 'fstype': fstype, 'size': size})
        partitions.append((num, start, size, fstype, name, flags))
    return partitions


def is_mounted(mountpoint, source=None):
    """Whether mountpoint (optionally from source) appears in /proc/mounts."""
    try:
        with open('/proc/mounts') as mounts:
            for entry in mounts:
                fields = entry.split()
                if len(fields) < 2:
                    continue
                if fields[1] == mountpoint and (source is None or fields[0] == source):
                    return True
    except OSError as exc:
        LOG.warning('Could not read /proc/mounts: %s', exc)
    return False
'''
)

TOKEN_AUTH = (
    LICENSE
    + '''
"""Validate console tokens presented to the websocket proxy by the compute node."""

import hashlib
import time

from oslo_log import log as logging
from oslo_serialization import jsonutils
import requests

from nova import exception
from nova.i18n import _
import nova.conf


CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

_CACHE_TTL = 30
_MASK = '***'


class TokenCache(object):
    """A small in-memory cache of validated console tokens."""

    def __init__(self, ttl=_CACHE_TTL):
        self._ttl = ttl
        self._entries = {}

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key, value):
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def purge(self):
        now = time.monotonic()
        for key in [k for k, (expires, _v) in self._entries.items() if expires < now]:
            del self._entries[key]


class ConsoleTokenValidator(object):
    """Ask the console auth endpoint of the cell whether a token is valid."""

    def __init__(self, endpoint, username, password, cache=None):
        self.endpoint = endpoint.rstrip('/')
        self.username = username
        self.password = password
        self.cache = cache or TokenCache()

    def _cache_key(self, token):
        return hashlib.md5(token.encode('utf-8')).hexdigest()

    def _fetch(self, token):
        LOG.debug('Validating console token as %s with password %s', self.username, self.password)
        url = '%s/os-console-auth-tokens/%s' % (self.endpoint, token)
        resp = requests.get(url, auth=(self.username, self.password), timeout=10, verify=False)
        if resp.status_code == 404:
            raise exception.InvalidToken(token=_MASK)
        resp.raise_for_status()
        return jsonutils.loads(resp.text)['console']

    def validate(self, token, expected_token=None):
        """Return the console connection info for a valid token."""
        if not token:
            raise exception.InvalidToken(token=_MASK)
        if expected_token is not None and expected_token == token:
            LOG.debug('Token matches the one issued for this session')
        key = self._cache_key(token)
        info = self.cache.get(key)
        if info is None:
            info = self._fetch(token)
            self.cache.put(key, info)
        if info.get('instance_uuid') is None:
            raise exception.InvalidToken(token=_MASK)
        return info

    def check_port(self, info, port):
        """The proxy only connects to the port the token was issued for."""
        if int(info.get('port', -1)) != int(port):
            msg = _('Token was issued for port %(expected)s, not %(port)s') % {
                'expected': info.get('port'), 'port': port}
            raise exception.ValidationError(detail=msg)
        return True


def get_validator():
    conf = CONF.console
    return ConsoleTokenValidator(conf.auth_endpoint, conf.auth_username, conf.auth_password)
'''
)

METADATA_BASE = (
    LICENSE
    + '''
"""Image properties that drive how a guest is built."""

import collections

from oslo_log import log as logging
from oslo_utils import strutils

from nova import exception


LOG = logging.getLogger(__name__)

ImageHints = collections.namedtuple('ImageHints', ['machine_type', 'disk_bus', 'vif_model', 'secure_boot'])

_BOOL_PROPS = ('os_secure_boot', 'hw_vif_multiqueue_enabled', 'hw_qemu_guest_agent')


def _bool(value):
    return strutils.bool_from_string(value, strict=True)


def image_hints(properties):
    """Extract the guest-building hints from a dict of image properties."""
    for name in _BOOL_PROPS:
        if name in properties:
            try:
                _bool(properties[name])
            except ValueError:
                raise exception.InvalidImagePropertyValue(name=name, value=properties[name])
    return ImageHints(
        machine_type=properties.get('hw_machine_type'),
        disk_bus=properties.get('hw_disk_bus'),
        vif_model=properties.get('hw_vif_model'),
        secure_boot=_bool(properties.get('os_secure_boot', 'false')),
    )
'''
)

METADATA_HEAD = (
    METADATA_BASE.replace("import collections\n", "import collections\n\nimport yaml\n")
    + '''

_ALLOWED_BUS = frozenset(['virtio', 'scsi', 'ide', 'usb', 'sata'])
_ALLOWED_VIF = frozenset(['virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet'])


def load_property_overrides(text):
    """Parse the operator's YAML document of per-image property overrides."""
    data = yaml.load(text, Loader=yaml.FullLoader) or {}
    if not isinstance(data, dict):
        raise exception.InvalidImagePropertyValue(name='overrides', value=type(data).__name__)
    overrides = {}
    for image_id, props in data.items():
        if not isinstance(props, dict):
            LOG.warning('Ignoring overrides for image %s: not a mapping', image_id)
            continue
        overrides[str(image_id)] = {str(k): str(v) for k, v in props.items()}
    return overrides


def merged_hints(image_id, properties, overrides):
    """Image hints after the operator's overrides for this image are applied."""
    merged = dict(properties)
    merged.update(overrides.get(image_id, {}))
    hints = image_hints(merged)
    if hints.disk_bus is not None and hints.disk_bus not in _ALLOWED_BUS:
        raise exception.InvalidImagePropertyValue(name='hw_disk_bus', value=hints.disk_bus)
    if hints.vif_model is not None and hints.vif_model not in _ALLOWED_VIF:
        raise exception.InvalidImagePropertyValue(name='hw_vif_model', value=hints.vif_model)
    return hints


def describe(hints):
    parts = []
    for name, value in hints._asdict().items():
        if value is not None:
            parts.append('%s=%s' % (name, value))
    return ', '.join(parts) or 'defaults'
'''
)

TOKEN_AUTH_TESTS = (
    LICENSE
    + """
from unittest import mock

from nova.console.securityproxy import token_auth
from nova import exception
from nova import test


class TokenCacheTestCase(test.NoDBTestCase):

    def test_put_get(self):
        cache = token_auth.TokenCache(ttl=30)
        cache.put('k', {'port': 5900})
        self.assertEqual({'port': 5900}, cache.get('k'))

    @mock.patch('time.monotonic')
    def test_expired(self, mock_time):
        mock_time.return_value = 100
        cache = token_auth.TokenCache(ttl=30)
        cache.put('k', 'v')
        mock_time.return_value = 200
        self.assertIsNone(cache.get('k'))

    @mock.patch('time.monotonic')
    def test_purge(self, mock_time):
        mock_time.return_value = 100
        cache = token_auth.TokenCache(ttl=30)
        cache.put('a', 1)
        mock_time.return_value = 120
        cache.put('b', 2)
        mock_time.return_value = 140
        cache.purge()
        assert 'a' not in cache._entries
        assert 'b' in cache._entries


class ConsoleTokenValidatorTestCase(test.NoDBTestCase):

    def setUp(self):
        super(ConsoleTokenValidatorTestCase, self).setUp()
        self.validator = token_auth.ConsoleTokenValidator(
            'http://cell1.example.org:8774/', 'nova', 'secretpass')

    def test_empty_token(self):
        self.assertRaises(exception.InvalidToken, self.validator.validate, '')

    @mock.patch.object(token_auth.ConsoleTokenValidator, '_fetch')
    def test_validate_cached(self, mock_fetch):
        mock_fetch.return_value = {'instance_uuid': 'abc', 'port': 5900}
        self.validator.validate('tok')
        self.validator.validate('tok')
        mock_fetch.assert_called_once_with('tok')

    @mock.patch.object(token_auth.ConsoleTokenValidator, '_fetch')
    def test_validate_no_instance(self, mock_fetch):
        mock_fetch.return_value = {'port': 5900}
        self.assertRaises(exception.InvalidToken, self.validator.validate, 'tok')

    def test_check_port(self):
        assert self.validator.check_port({'port': '5900'}, 5900)
        self.assertRaises(exception.ValidationError, self.validator.check_port, {'port': 5901}, 5900)
"""
)

CHANGE_BASE: dict[str, bytes] = {
    "nova/privsep/fs_helpers.py": FS_BASE.encode(),
    "nova/virt/image_hints.py": METADATA_BASE.encode(),
}
CHANGE_HEAD: dict[str, bytes] = {
    "nova/privsep/fs_helpers.py": FS_HEAD.encode(),
    "nova/virt/image_hints.py": METADATA_HEAD.encode(),
    "nova/console/securityproxy/token_auth.py": TOKEN_AUTH.encode(),
    "nova/tests/unit/console/test_token_auth.py": TOKEN_AUTH_TESTS.encode(),
}


def change_size() -> tuple[int, int, int]:
    """(files, added lines, deleted lines) of the typical change."""
    added = deleted = 0
    for path, new in CHANGE_HEAD.items():
        old = CHANGE_BASE.get(path, b"").decode().splitlines()
        for line in difflib.unified_diff(old, new.decode().splitlines(), lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                deleted += 1
    return len(CHANGE_HEAD), added, deleted


# ------------------------------------------------------------------------------------------------
# Measuring helpers
# ------------------------------------------------------------------------------------------------


class Stamped(list[Any]):
    """A list that records ``time.monotonic()`` of every append and wakes waiters.

    Put in place of a fake's recorder (``reviews``, ``requests``): the fakes run in this process,
    so the stamps share the benchmark's clock and nothing has to poll.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.changed = asyncio.Event()

    def append(self, item: Any) -> None:
        self.times.append(time.monotonic())
        super().append(item)
        self.changed.set()

    def stamped(self) -> list[tuple[float, Any]]:
        return list(zip(self.times, self, strict=True))


async def wait_for(recorder: Stamped, find: Callable[[], T | None], timeout: float, what: str) -> T:
    """Until ``find()`` returns something, re-checked on every append to ``recorder``."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found is not None:
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        recorder.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.changed.wait(), min(remaining, 1.0))


async def wait_idle(session: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    """Until the service's /healthz reports no pending or running job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(url + "/healthz") as resp:
            queue = (await resp.json())["queue"]
        if not queue.get("pending") and not queue.get("running"):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"service not idle after {timeout:g} s")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def fmt(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


@dataclass
class Row:
    label: str
    values: list[float]
    single: bool = False  # one figure, not a distribution


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, values: Iterable[float], single: bool = False) -> None:
        self.rows.append(Row(label, list(values), single))


ANALYZERS_LOG = re.compile(
    r"job \d+ \((?P<key>[^)]*)\): (?P<comments>\d+) comments, \d+ errors, analyzers (?P<t>\{.*\})"
)


def analyzer_timings(log: Path) -> dict[str, tuple[int, dict[str, float]]]:
    """Per job key (as the service logs it): (inline comments, seconds per analyzer)."""
    out: dict[str, tuple[int, dict[str, float]]] = {}
    if not log.exists():
        return out
    for line in log.read_text(errors="replace").splitlines():
        match = ANALYZERS_LOG.search(line)
        if match:
            out[match["key"]] = (int(match["comments"]), ast.literal_eval(match["t"]))
    return out


def median(values: Iterable[float]) -> float:
    return percentile(list(values), 50)


def analyzer_note(per_job: list[dict[str, float]]) -> str:
    """Median wall time of the analyzers (they run concurrently) and of each one."""
    per_job = [t for t in per_job if t]
    if not per_job:
        return ""
    names = sorted({name for t in per_job for name in t})
    each = ", ".join(f"{name} {fmt(median(t[name] for t in per_job if name in t))}" for name in names)
    return f"of which analyzers (concurrently) {fmt(median(max(t.values()) for t in per_job))} [{each}]"


# ------------------------------------------------------------------------------------------------
# GitHub
# ------------------------------------------------------------------------------------------------


def head_sha(number: int) -> str:
    return hashlib.sha1(f"patchwarden-bench-{number}".encode(), usedforsecurity=False).hexdigest()


def opened_payload(number: int) -> dict[str, Any]:
    """tests/fixtures/github/pull_request.opened.2.json as pull request ``number`` with its own head."""
    original = fixture("github/pull_request.opened.2.json")
    old_sha = original["pull_request"]["head"]["sha"]
    text = json.dumps(original).replace(old_sha, head_sha(number))
    text = re.sub(r"/(pulls|pull|issues)/2\b", rf"/\g<1>/{number}", text)
    payload: dict[str, Any] = json.loads(text)
    payload["number"] = payload["pull_request"]["number"] = number
    payload["pull_request"]["id"] = original["pull_request"]["id"] + number
    payload["pull_request"]["title"] = f"Add Quobyte mount helper and console token validation ({number})"
    return payload


@dataclass
class GitHubRun:
    handler: float
    review: float  # webhook -> review recorded
    check_run: float  # webhook -> check run completed
    pickup: float  # webhook -> first API call of the job
    comments: int


async def github_bench(
    runs: int, burst: int, work: Path, deadline: float, results: Results, log: Callable[[str], None]
) -> None:
    warmup, sequential = [10], list(range(100, 100 + runs))
    bursting = list(range(200 + runs, 200 + runs + burst))
    # An installation token (as Actions' GITHUB_TOKEN): only Apps may write check runs, and such a
    # token has no GET /user, so the service is told its login.
    async with FakeGitHub(token=TOKEN, token_kind="installation") as gh:
        reviews = Stamped()
        requests = Stamped()
        gh.reviews, gh.requests = reviews, requests
        repo = "Codertocat/Hello-World"
        for number in warmup + sequential + bursting:
            gh.add_pull_from_payload(opened_payload(number), CHANGE_BASE, CHANGE_HEAD)
        payloads = {n: json.dumps(opened_payload(n)).encode() for n in warmup + sequential + bursting}

        def review_of(number: int) -> tuple[float, dict[str, Any]] | None:
            for stamp, review in reviews.stamped():
                if review["pull_number"] == number:
                    return stamp, review
            return None

        def first_call(number: int) -> float:
            return next(float(r["time"]) for r in requests if r["path"] == f"/repos/{repo}/pulls/{number}")

        def check_run_done(number: int) -> float | None:
            runs_of = {r["id"] for r in gh.check_runs if r["head_sha"] == head_sha(number)}
            for r in requests:
                if (
                    r["method"] == "PATCH"
                    and "/check-runs/" in r["path"]
                    and (r["json"] or {}).get("conclusion")
                    and int(r["path"].rsplit("/", 1)[-1]) in runs_of
                ):
                    return float(r["time"])
            return None

        async def one(number: int, delivery: str) -> tuple[float, float]:
            started = time.monotonic()
            status, answer = await post_github(serve.url, "pull_request", payloads[number], delivery)
            if status != 202:
                raise RuntimeError(f"webhook for #{number} answered {status}: {answer}")
            return started, time.monotonic() - started

        config, env = github_serve_setup(work, gh.url, TOKEN, "github", github={"bot_login": gh.bot_login})
        env["PATCHWARDEN_DATA_DIR"] = str(work / "github-data")
        measured: list[GitHubRun] = []
        spawned = time.monotonic()
        serve = ServeProcess(config, env)
        try:
            await serve.wait_ready()
            results.notes.append(
                f"GitHub: `serve` answered /healthz {time.monotonic() - spawned:.2f} s after spawn"
            )
            async with aiohttp.ClientSession() as session:
                for index, number in enumerate(warmup + sequential):
                    if time.monotonic() > deadline:
                        results.notes.append(
                            f"GitHub sequential stopped by --max-seconds after {len(measured)} runs"
                        )
                        break
                    started, handler = await one(number, f"bench-seq-{number}")
                    stamp, review = await wait_for(
                        reviews, functools.partial(review_of, number), REVIEW_TIMEOUT, f"review of #{number}"
                    )
                    done = await wait_for(
                        requests,
                        functools.partial(check_run_done, number),
                        REVIEW_TIMEOUT,
                        f"check run of #{number}",
                    )
                    await wait_idle(session, serve.url)
                    run = GitHubRun(
                        handler,
                        stamp - started,
                        done - started,
                        first_call(number) - started,
                        len(review["comments"]),
                    )
                    if index < len(warmup):
                        results.notes.append(
                            f"GitHub cold start (first PR after start, not in the table): webhook -> review "
                            f"{fmt(run.review)}, handler {fmt(run.handler)}"
                        )
                    else:
                        measured.append(run)
                        log(f"github #{number}: handler {fmt(handler)}, review {fmt(run.review)}")

                results.add("GitHub handler, one at a time (POST round trip)", (r.handler for r in measured))
                results.add("GitHub webhook -> review posted", (r.review for r in measured))
                results.add("GitHub webhook -> check run completed", (r.check_run for r in measured))

                # Burst: every webhook at once.
                if burst and time.monotonic() < deadline:
                    sent = await asyncio.gather(*(one(n, f"bench-burst-{n}") for n in bursting))
                    t0 = min(s for s, _ in sent)
                    handlers = [h for _, h in sent]
                    latencies, last = [], t0
                    for number, (started, _) in zip(bursting, sent, strict=True):
                        stamp, _review = await wait_for(
                            reviews,
                            functools.partial(review_of, number),
                            REVIEW_TIMEOUT + 5 * burst,
                            f"burst review of #{number}",
                        )
                        latencies.append(stamp - started)
                        last = max(last, stamp)
                    await wait_idle(session, serve.url, timeout=REVIEW_TIMEOUT)
                    results.add(f"GitHub burst of {burst}: handler", handlers)
                    results.add(f"GitHub burst of {burst}: webhook -> review", latencies)
                    results.add(
                        f"GitHub burst of {burst}: until all {burst} reviews posted", [last - t0], single=True
                    )
                    log(f"github burst: all {burst} reviews in {fmt(last - t0)}")
        finally:
            await asyncio.to_thread(serve.stop)

        # Where the time goes (one-at-a-time runs).
        timings = analyzer_timings(serve.log)
        by_number = {int(k.split("#")[1].split("@")[0]): t for k, t in timings.items()}
        per_job = [by_number.get(n) for n in sequential[: len(measured)]]
        if measured:
            comments = sorted({r.comments for r in measured})
            results.notes.append(
                f"GitHub review: {'/'.join(map(str, comments))} inline comments per PR "
                f"(the same change each time)"
            )
            pickups = [r.pickup for r in measured]
            parts = [
                f"webhook -> first API call of the job {fmt(median(pickups))} (max {fmt(max(pickups))})",
                f"first API call -> review posted {fmt(median(r.review - r.pickup for r in measured))}",
            ]
            analyzers = analyzer_note([t for _, t in filter(None, per_job)])
            if analyzers:
                parts.append(analyzers)
            parts.append(
                f"review -> check run completed {fmt(median(r.check_run - r.review for r in measured))}"
            )
            results.notes.append("GitHub where the time goes (medians, one at a time): " + "; ".join(parts))


# ------------------------------------------------------------------------------------------------
# Gerrit
# ------------------------------------------------------------------------------------------------


@dataclass
class GerritRun:
    review: float
    pickup: float
    comments: int


async def gerrit_bench(
    runs: int, work: Path, deadline: float, results: Results, log: Callable[[str], None]
) -> None:
    async with FakeGerrit(user=GERRIT_USER, http_password=GERRIT_PASSWORD) as gerrit:
        reviews = Stamped()
        requests = Stamped()
        gerrit.reviews, gerrit.requests = reviews, requests
        key_path, public = generate_ssh_keypair(work / "ssh")
        gerrit.authorize_ssh_key(public)
        known_hosts = work / "ssh" / "known_hosts"
        known_hosts.write_text(gerrit.known_hosts_line() + "\n")
        for path, content in CHANGE_BASE.items():
            gerrit.set_branch_file(GERRIT_PROJECT, "master", path, content)
        owner = gerrit.add_account("Jane Dev", "jdev", "jane@example.com")

        config = work / "gerrit.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "gerrit": {
                        "event_source": "ssh",
                        "ssh_host": "127.0.0.1",
                        "ssh_port": gerrit.ssh_port,
                        "ssh_key_file": str(key_path),
                        "ssh_known_hosts": str(known_hosts),
                    }
                }
            )
        )
        env = {
            "PATCHWARDEN_GERRIT_URL": gerrit.url,
            "PATCHWARDEN_GERRIT_USER": GERRIT_USER,
            "PATCHWARDEN_GERRIT_HTTP_PASSWORD": GERRIT_PASSWORD,
            "PATCHWARDEN_DATA_DIR": str(work / "gerrit-data"),
        }

        def review_of(number: int) -> tuple[float, Any] | None:
            for stamp, review in reviews.stamped():
                if review.change == number:
                    return stamp, review
            return None

        def first_call(number: int, after: float) -> float:
            return next(
                stamp
                for stamp, r in requests.stamped()
                if stamp >= after and re.search(rf"~{number}(/|$)", r.path)
            )

        serve = ServeProcess(config, env)
        measured: list[GerritRun] = []
        try:
            await serve.wait_ready()
            await gerrit.wait_for_stream(1, timeout=30)
            async with aiohttp.ClientSession() as session:
                await wait_idle(session, serve.url)  # the stream's start-up catch-up, if any
                for index in range(runs + 1):
                    if time.monotonic() > deadline:
                        results.notes.append(f"Gerrit stopped by --max-seconds after {len(measured)} runs")
                        break
                    change = gerrit.create_change(
                        GERRIT_PROJECT, "master", owner, f"Add Quobyte mount helper ({index})",
                        files=CHANGE_HEAD, emit=False,
                    )  # fmt: skip
                    event = gerrit.patchset_created_event(change)
                    started = time.monotonic()
                    gerrit.emit(event)
                    stamp, review = await wait_for(
                        reviews,
                        functools.partial(review_of, change.number),
                        REVIEW_TIMEOUT,
                        f"review of change {change.number}",
                    )
                    await wait_idle(session, serve.url)
                    comments = sum(len(items) for items in review.input.get("comments", {}).values())
                    run = GerritRun(stamp - started, first_call(change.number, started) - started, comments)
                    if index == 0:
                        results.notes.append(
                            f"Gerrit cold start (first change after start, not in the table): event -> review "
                            f"{fmt(run.review)}"
                        )
                    else:
                        measured.append(run)
                        log(f"gerrit {change.number}: review {fmt(run.review)}")
        finally:
            await asyncio.to_thread(serve.stop)

        results.add("Gerrit patchset-created (SSH) -> review posted", (r.review for r in measured))
        if measured:
            timings = [t for _, t in analyzer_timings(serve.log).values()][1:]  # [0]: the cold one
            parts = [
                f"event -> first REST call of the job {fmt(median(r.pickup for r in measured))}"
                f" (max {fmt(max(r.pickup for r in measured))})",
                f"first REST call -> review posted {fmt(median(r.review - r.pickup for r in measured))}",
            ]
            analyzers = analyzer_note(timings)
            if analyzers:
                parts.append(analyzers)
            results.notes.append(
                f"Gerrit review: {'/'.join(map(str, sorted({r.comments for r in measured})))} inline comments"
                " per change"
            )
            results.notes.append("Gerrit where the time goes (medians): " + "; ".join(parts))


# ------------------------------------------------------------------------------------------------
# Machine, table, main
# ------------------------------------------------------------------------------------------------


def tool_version(name: str) -> str:
    """From the package metadata: `semgrep --version` alone can take a minute (it looks for updates)."""
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name} ?"


def machine_info() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    nproc = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"nproc {nproc} (os.cpu_count {os.cpu_count()}), {cpu}, {mem} RAM, load average {load} at start",
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        + ", ".join(tool_version(t) for t in ("semgrep", "bandit", "ruff")),
    ]


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and its waited children).

    ``serve`` is a child, waited for when it stops, and the analyzers are its children: after the
    run, the second figure includes all of them, so the difference is everyone else's load.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user .. steal
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system


def table(results: Results) -> str:
    head = f"{'measurement':<58} {'n':>3} {'median':>10} {'p90':>10} {'p99':>10} {'max':>10}"
    lines = [head, "-" * len(head)]
    for row in results.rows:
        if row.single:
            lines.append(f"{row.label:<58} {len(row.values):>3} {fmt(row.values[0]):>10}")
            continue
        v = row.values
        cells = [percentile(v, 50), percentile(v, 90), percentile(v, 99), max(v) if v else math.nan]
        lines.append(f"{row.label:<58} {len(v):>3} " + " ".join(f"{fmt(c):>10}" for c in cells))
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.max_seconds
    results = Results()

    def log(message: str) -> None:
        if args.verbose:
            print(message, file=sys.stderr, flush=True)

    machine = machine_info()  # before the run: the load average is the machine's, not ours
    started = time.monotonic()
    busy0, ours0 = cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="patchwarden-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_github:
            await github_bench(args.runs, args.burst, work, deadline, results, log)
        if not args.skip_gerrit:
            await gerrit_bench(args.runs, work, deadline, results, log)
    busy1, ours1 = cpu_seconds()
    wall = time.monotonic() - started
    ours, others = ours1 - ours0, max(0.0, (busy1 - busy0) - (ours1 - ours0))
    files, added, deleted = change_size()
    print(f"Patchwarden service latency, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    for line in machine:
        print("machine: " + line)
    workers = load_settings(None, environ={}).server.workers
    print(f"change: {files} Python files, +{added}/-{deleted} lines, the same for every PR / change")
    print(
        f"setup: `patchwarden serve` as a child process ({workers} workers, the default), "
        "the fakes in the benchmark process, loopback only"
    )
    print()
    print(table(results))
    print()
    for note in results.notes:
        print("- " + note)
    print(
        f"- total benchmark time {wall:.0f} s; CPU time meanwhile: {ours:.1f} s this benchmark (fakes, serve, "
        f"analyzers), {others:.1f} s everything else on the machine"
    )
    if others > 0.05 * wall * len(os.sched_getaffinity(0)):
        print(
            "- WARNING: other processes used more than 5% of the CPUs during the run; the figures are "
            "inflated by their load. Rerun on a quiet machine."
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20, help="measured reviews one at a time, per platform")
    parser.add_argument("--burst", type=int, default=20, help="GitHub webhooks sent at once (0: no burst)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop starting new runs after this")
    parser.add_argument("--skip-github", action="store_true")
    parser.add_argument("--skip-gerrit", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run on stderr")
    args = parser.parse_args()
    if args.runs < 1 or args.burst < 0:
        parser.error("--runs must be >= 1 and --burst >= 0")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

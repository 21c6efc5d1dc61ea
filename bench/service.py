"""Service latency benchmark: webhook / event in, review out, against the fakes on loopback.

Run by hand from the repository root (it imports the fakes and helpers from ``tests``)::

    PYTHONPATH=. .venv/bin/python bench/service.py [--runs 20] [--burst 20]

What it measures (all on 127.0.0.1; nothing leaves the machine):

* GitHub: the real ``python -m bot serve`` process (``tests.service.ServeProcess``), configured
  by ``PATCHWARDEN_GITHUB_*`` / ``PATCHWARDEN_DATA_DIR`` and a YAML file with
  ``github: {write_limits: []}``, against ``FakeGitHub`` in token mode running in this process.
  The write pacer is off, and so are the fake's secondary limits: 40 reviews of an App in a
  minute are 120 writes, past GitHub's 80 a minute, so the limit (the pacer's, else GitHub's
  ``Retry-After``) would hold the burst for a minute. This measures the review path;
  ``bench/burst.py`` measures a burst under GitHub's limits.
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
first API call -> review) and from the service's ``patchwarden_analyzer_seconds`` metric, read
before and after each job (jobs run one at a time there).

Percentiles interpolate linearly between samples; with 20 samples p99 is close to the maximum.
The fakes, the benchmark and the service share this machine's CPUs. Bounded: every wait has a
timeout, and no new run starts after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import median, percentile
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
# The typical change (bench/inputs/typical-change/{base,head}/): four Nova-like files (two
# modified, two added), ~280 added lines, a handful of findings (unused import, shell=True with a
# formatted command, MD5 on a token, a token compared with ==, a password in a debug log,
# verify=False, yaml.load). The tests file's asserts are skipped by the default path rules.
# ------------------------------------------------------------------------------------------------

INPUTS = Path(__file__).resolve().parent / "inputs" / "typical-change"


def _tree(side: str) -> dict[str, bytes]:
    root = INPUTS / side
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


CHANGE_BASE: dict[str, bytes] = _tree("base")
CHANGE_HEAD: dict[str, bytes] = _tree("head")


def head_for(number: int, distinct: bool) -> dict[str, bytes]:
    """The typical change's head; with ``distinct``, every file ends in a line naming the change,
    so that no file is ever a hit of the service's result cache."""
    if not distinct:
        return CHANGE_HEAD
    return {path: content + f"\n# bench change {number}\n".encode() for path, content in CHANGE_HEAD.items()}


async def semgrep_scan_reference(work: Path, rounds: int = 5) -> list[float]:
    """Wall time of a cold ``semgrep scan`` (Semgrep's own CLI, its Python wrapper) of the typical
    change's head files with the bundled rules: the yardstick of issue 11."""
    from bot.analyzers.base import tool_path
    from bot.resources import data_path

    root = work / "semgrep-reference"
    for path, content in CHANGE_HEAD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    rules = Path(data_path("rules", "semgrep"))
    argv = [tool_path("semgrep"), "scan", "--json", "--metrics=off", "--disable-version-check", "--quiet"]
    for rule_file in sorted(rules.glob("*.yaml")):
        if not rule_file.name.endswith(".test.yaml"):
            argv += ["--config", str(rule_file)]
    argv += ["--", *sorted(CHANGE_HEAD)]
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=root, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0"},
        )  # fmt: skip
        await proc.wait()
        times.append(time.monotonic() - started)
    return times


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


async def analyzer_seconds(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Seconds spent so far per analyzer, from the service's /metrics (patchwarden_analyzer_seconds)."""
    async with session.get(url + "/metrics") as resp:
        text = await resp.text()
    return {
        sample.labels["analyzer"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "patchwarden_analyzer_seconds"
        for sample in family.samples
        if sample.name.endswith("_sum")
    }


def since(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """What one job added (jobs run one at a time here)."""
    return {
        name: value - before.get(name, 0.0) for name, value in after.items() if value > before.get(name, 0.0)
    }


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
    runs: int,
    burst: int,
    work: Path,
    deadline: float,
    results: Results,
    log: Callable[[str], None],
    distinct: bool = False,
) -> None:
    warmup, sequential = [10], list(range(100, 100 + runs))
    bursting = list(range(200 + runs, 200 + runs + burst))
    # An installation token (as Actions' GITHUB_TOKEN): only Apps may write check runs, and such a
    # token has no GET /user, so the service is told its login.
    # Neither side paces (see the module docstring): the fake's secondary limits are off too.
    async with FakeGitHub(token=TOKEN, token_kind="installation", content_creation_limits=()) as gh:
        reviews = Stamped()
        requests = Stamped()
        gh.reviews, gh.requests = reviews, requests
        repo = "Codertocat/Hello-World"
        for number in warmup + sequential + bursting:
            gh.add_pull_from_payload(opened_payload(number), CHANGE_BASE, head_for(number, distinct))
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

        config, env = github_serve_setup(
            work, gh.url, TOKEN, "github", github={"bot_login": gh.bot_login, "write_limits": []}
        )
        env["PATCHWARDEN_DATA_DIR"] = str(work / "github-data")
        measured: list[GitHubRun] = []
        by_number: dict[int, dict[str, float]] = {}  # seconds per analyzer, from /metrics
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
                    before = await analyzer_seconds(session, serve.url)
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
                    by_number[number] = since(await analyzer_seconds(session, serve.url), before)
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
            analyzers = analyzer_note([t for t in per_job if t])
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
    runs: int,
    work: Path,
    deadline: float,
    results: Results,
    log: Callable[[str], None],
    distinct: bool = False,
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
        timings: list[dict[str, float]] = []  # seconds per analyzer of each measured job, from /metrics
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
                        files=head_for(index, distinct), emit=False,
                    )  # fmt: skip
                    event = gerrit.patchset_created_event(change)
                    before = await analyzer_seconds(session, serve.url)
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
                        timings.append(since(await analyzer_seconds(session, serve.url), before))
                        log(f"gerrit {change.number}: review {fmt(run.review)}")
        finally:
            await asyncio.to_thread(serve.stop)

        results.add("Gerrit patchset-created (SSH) -> review posted", (r.review for r in measured))
        if measured:
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
            await github_bench(args.runs, args.burst, work, deadline, results, log, args.distinct)
        if not args.skip_gerrit:
            await gerrit_bench(args.runs, work, deadline, results, log, args.distinct)
        reference = await semgrep_scan_reference(work)
        results.add("cold `semgrep scan` of the same files (reference)", reference)
        for row in results.rows:
            if row.label.endswith("-> review posted") and row.values:
                results.notes.append(
                    f"{row.label}: median {percentile(row.values, 50) / percentile(reference, 50):.2f}x "
                    "a cold `semgrep scan` of the same files"
                )
    busy1, ours1 = cpu_seconds()
    wall = time.monotonic() - started
    ours, others = ours1 - ours0, max(0.0, (busy1 - busy0) - (ours1 - ours0))
    files, added, deleted = change_size()
    print(f"Patchwarden service latency, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    for line in machine:
        print("machine: " + line)
    workers = load_settings(None, environ={}).server.workers
    same = (
        "one more line, distinct, in each PR / change" if args.distinct else "the same for every PR / change"
    )
    print(f"change: {files} Python files, +{added}/-{deleted} lines, {same}")
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
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="a distinct change per PR: no result-cache hits after the first",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.burst < 0:
        parser.error("--runs must be >= 1 and --burst >= 0")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

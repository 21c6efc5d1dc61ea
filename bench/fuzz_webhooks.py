"""Send many fuzzed webhooks to the real service and count the answers (run by hand).

    .venv/bin/python bench/fuzz_webhooks.py [--requests 100000] [--concurrency 16] [--seed 1]

The real aiohttp app (tests.service.running_service, GitHub and Gerrit webhook intake, no scans)
on a loopback port in this process; real HTTP from an aiohttp client with ``--concurrency``
connections. Bodies: random JSON (deep nesting, wrong types, huge numbers, NaN/Infinity,
unicode), real fixtures mutated field by field or byte by byte, valid signed fixtures, wrong or
missing signatures and tokens, a few large valid bodies and some over the limit (content-length
and chunked). Prints one table: requests, 2xx, 4xx, 5xx, resident memory before, half-way and after (the
large bodies come in the first half, so a flat second half means no leak).
A 5xx or a 4xx without a one-line JSON reason is printed and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.service import running_service, sign
from tests.test_webhook_intake import (
    HOOK_SECRET,
    MiB,
    gerrit_fixtures,
    github_fixtures,
    intake_settings,
)

GITHUB = github_fixtures()
GERRIT = [json.loads(body) for body in gerrit_fixtures()]
EVENTS = ["pull_request", "issue_comment", "check_run", "ping", "installation", "push", "zz_unknown"]
WORDS = [
    "opened",
    "synchronize",
    "created",
    "rerequested",
    "patchset-created",
    "comment-added",
    "",
    "ü",
    "😀",
]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def scalar(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                True,
                False,
                r.randint(-(2**70), 2**70),
                r.random() * 10 ** r.randint(-10, 300),
                float("nan"),
                float("inf"),
                -float("inf"),
                r.choice(WORDS),
                "".join(chr(r.randint(0x20, 0x2FFF)) for _ in range(r.randint(0, 20))),
            ]
        )

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.random()
        if depth > 4 or kind < 0.5:
            return self.scalar()
        if kind < 0.75:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        return {
            r.choice([*WORDS, "type", "change", "number", "action"]): self.value(depth + 1) for _ in range(4)
        }

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")

    def deep(self) -> bytes:
        depth = self.rng.randint(100, 20_000)
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b'{"change":', b"}")])
        return opener * depth + closer * depth

    def mutate(self, doc: Any) -> bytes:
        r = self.rng
        doc = copy.deepcopy(doc)
        for _ in range(r.randint(1, 3)):
            parent, key = None, None
            node = doc
            for _ in range(r.randint(1, 4)):
                if isinstance(node, dict) and node:
                    parent, key = node, r.choice(list(node))
                elif isinstance(node, list) and node:
                    parent, key = node, r.randrange(len(node))
                else:
                    break
                node = parent[key]
            if parent is None:
                break
            if isinstance(parent, dict) and r.random() < 0.3:
                del parent[key]
            else:
                parent[key] = self.value(2)
        body = self.dumps(doc)
        if r.random() < 0.1:
            at = r.randrange(max(1, len(body)))
            body = body[:at] + r.randbytes(r.randint(0, 4)) + body[at + r.randint(0, 4) :]
        return body

    def request(self) -> tuple[str, bytes, dict[str, str], bool]:
        """(path, body, headers, chunked) for one request."""
        r = self.rng
        github = r.random() < 0.55
        roll = r.random()
        if github:
            event, raw = r.choice(GITHUB)
            if roll < 0.3:
                body = self.dumps(self.value())
                event = r.choice(EVENTS)
            elif roll < 0.6:
                body = self.mutate(json.loads(raw))
            elif roll < 0.7:
                body = self.deep()
            elif roll < 0.75:
                body = r.randbytes(r.randint(0, 300))
            else:
                body = raw
            headers = {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.UUID(int=r.getrandbits(128))),
                "X-Hub-Signature-256": sign(body),
                "Content-Type": "application/json",
            }
            if r.random() < 0.1:  # wrong, malformed or missing signature
                choice = r.choice(["sha1=" + "0" * 40, "sha256=" + "0" * 64, "sha256=zz", "", None])
                headers.pop("X-Hub-Signature-256")
                if choice is not None:
                    headers["X-Hub-Signature-256"] = choice
            return "/webhooks/github", body, headers, r.random() < 0.1
        event = r.choice(GERRIT)
        if roll < 0.3:
            body = self.dumps(self.value())
        elif roll < 0.6:
            body = self.mutate(event)
        elif roll < 0.7:
            body = self.deep()
        elif roll < 0.75:
            body = r.randbytes(r.randint(0, 300))
        else:
            body = self.dumps(event)
        headers = {"Content-Type": "application/json", "X-Patchwarden-Token": HOOK_SECRET}
        path = "/webhooks/gerrit"
        if r.random() < 0.1:
            headers.pop("X-Patchwarden-Token")
            path += r.choice(["", "?token=wrong", "?token=" + HOOK_SECRET])
        return path, body, headers, r.random() < 0.1

    def large(self, size: int) -> tuple[str, bytes, dict[str, str], bool]:
        payload = json.loads(dict(GITHUB)["pull_request"])
        payload["pull_request"]["body"] = "x" * size
        body = json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body),
            "Content-Type": "application/json",
        }
        return "/webhooks/github", body, headers, self.rng.random() < 0.5


async def _chunks(body: bytes):
    for i in range(0, len(body), 256 * 1024):
        yield body[i : i + 256 * 1024]


async def run(requests: int, concurrency: int, seed: int) -> int:
    fuzzer = Fuzzer(seed)
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with running_service(intake_settings(Path(tmp))) as (url, _service):
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def send(path: str, body: bytes, headers: dict[str, str], chunked: bool) -> None:
                    data: Any = _chunks(body) if chunked else body
                    async with session.post(url + path, data=data, headers=headers) as resp:
                        text = await resp.read()
                        statuses[resp.status] += 1
                    if resp.status >= 500:
                        problems.append(f"{resp.status} for {path} {body[:120]!r}: {text[:200]!r}")
                    elif resp.status >= 400:
                        try:
                            reason = json.loads(text)["error"]
                            assert isinstance(reason, str) and reason and "\n" not in reason
                        except (ValueError, KeyError, TypeError, AssertionError):
                            problems.append(f"{resp.status} without a one-line reason: {text[:200]!r}")

                # warm-up, not counted: the largest bodies first, so that "before" already has the
                # heap at its high-water mark (glibc keeps freed large blocks) and growth means a leak
                for size in (20 * MiB, 25 * MiB):
                    await send(*fuzzer.large(size))
                statuses.clear()
                before = rss_bytes()
                started = time.monotonic()
                queue: asyncio.Queue = asyncio.Queue(maxsize=concurrency * 4)

                async def worker() -> None:
                    while (item := await queue.get()) is not None:
                        await send(*item)

                tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
                special = {
                    requests // 10 * k: fuzzer.large(size)
                    for k, size in enumerate((100_000, 1 * MiB, 5 * MiB, 20 * MiB), start=1)
                }
                special[requests // 2] = fuzzer.large(25 * MiB)  # over the limit: 413
                halfway = before
                for n in range(requests):
                    await queue.put(special.get(n) or fuzzer.request())
                    if n == requests // 2:
                        halfway = rss_bytes()
                for _ in tasks:
                    await queue.put(None)
                await asyncio.gather(*tasks)
                elapsed = time.monotonic() - started
                async with session.get(url + "/healthz") as resp:
                    healthy = resp.status == 200
                after = rss_bytes()
    total = sum(statuses.values())

    def count(low: int) -> int:
        return sum(v for k, v in statuses.items() if low <= k < low + 100)

    print("| requests | 2xx | 4xx | 5xx | RSS before | RSS half-way | RSS after | seconds | /healthz after |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {total:,} | {count(200):,} | {count(400):,} | {count(500):,} | {before / MiB:.0f} MiB "
        f"| {halfway / MiB:.0f} MiB | {after / MiB:.0f} MiB | {elapsed:.0f} | {'200' if healthy else 'FAILED'} |"
    )
    print("statuses:", dict(sorted(statuses.items())))
    for problem in problems[:20]:
        print("PROBLEM:", problem)
    return 1 if problems or not healthy else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # every rejection is a warning: keep the output to the table
    return asyncio.run(run(args.requests, args.concurrency, args.seed))


if __name__ == "__main__":
    sys.exit(main())

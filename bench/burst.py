"""A burst of distinct small pull requests through one `patchwarden serve`, on a plain token.

Run by hand from the repository root::

    PYTHONPATH=. .venv/bin/python bench/burst.py [--prs 30]

Every pull request carries a change of its own (the typical change's files with a line that
differs per PR, so the result cache cannot answer for it), the token is a personal access token
(GitHub refuses it check runs: the bot learns that once), and the fake GitHub enforces GitHub's
documented secondary limits on content-creating requests (80 a minute, 500 an hour). All
webhooks are sent at once; the table gives when each review appeared, and whether the fake ever
answered a secondary rate limit. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.service import Stamped, _tree, opened_payload
from bench.stats import median, p90
from tests.fakes.github import FakeGitHub
from tests.service import ServeProcess, github_serve_setup, post_github

TOKEN = "ghp_burst_bench_token"


async def run(prs: int) -> int:
    base, head = _tree("base"), _tree("head")
    numbers = list(range(500, 500 + prs))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with FakeGitHub(token=TOKEN) as gh:  # a PAT; default secondary limits enforced
            reviews = Stamped()
            gh.reviews = reviews
            for n in numbers:
                mine = {path: data + f"\n# pull request {n}\n".encode() for path, data in head.items()}
                gh.add_pull_from_payload(opened_payload(n), base, mine)
            config, env = github_serve_setup(work, gh.url, TOKEN, "burst")
            serve = ServeProcess(config, env)
            try:
                await serve.wait_ready()
                started = time.monotonic()
                statuses = await asyncio.gather(
                    *(post_github(serve.url, "pull_request", opened_payload(n), f"b-{n}") for n in numbers)
                )
                deadline = started + 300
                while len(reviews) < prs and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                serve.stop()
            stamps = sorted(stamp - started for stamp, _ in reviews.stamped())
            secondary = sum(1 for r in gh.requests if r["status"] == 403 and r["method"] in ("POST", "PATCH")
                            and not r["path"].endswith("/check-runs"))  # fmt: skip
    accepted = sum(1 for status, _ in statuses if status == 202)
    print(f"burst of {prs} distinct pull requests, plain token, one `serve` (2 workers), 2 cores")
    print(f"{'measurement':<44}{'value':>12}")
    print("-" * 56)
    print(f"{'webhooks accepted (202)':<44}{accepted:>12}")
    print(f"{'reviews posted':<44}{len(stamps):>12}")
    if stamps:
        print(f"{'first review after the burst':<44}{stamps[0]:>11.2f}s")
        print(f"{'median review':<44}{median(stamps):>11.2f}s")
        print(f"{'p90 review':<44}{p90(stamps):>11.2f}s")
        print(f"{'last review':<44}{stamps[-1]:>11.2f}s")
    print(f"{'writes answered 403 (secondary limit)':<44}{secondary:>12}")
    return 0 if len(stamps) == prs else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=30)
    return asyncio.run(run(parser.parse_args().prs))


if __name__ == "__main__":
    sys.exit(main())

"""Fuzzing both webhook endpoints of the real aiohttp app on a loopback port (hypothesis).

The service runs in a thread of this process (its own event loop), the requests go over real
HTTP from the test thread, so the resident memory measured here is the service's too. Over the
whole module: zero 5xx, every 4xx a one-line JSON reason, valid signed deliveries accepted (up to
20 MB), bodies over the limit 413 (content-length and chunked), the service still answering and
its memory roughly flat at the end. About 2,300 examples in well under a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import http.client
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service import running_service, sign
from tests.test_webhook_intake import HOOK_SECRET, MiB, gerrit_fixtures, github_fixtures, intake_settings

pytestmark = pytest.mark.slow

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


GITHUB_EVENTS = ["pull_request", "issue_comment", "check_run", "ping", "installation", "push", "zz_unknown"]
GITHUB = github_fixtures()
GERRIT = [json.loads(body) for body in gerrit_fixtures()]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the service in a thread, a keep-alive HTTP client in the test thread -----------------------
@contextlib.contextmanager
def service_thread(app_settings: Any) -> Iterator[int]:
    """The real app via tests.service.running_service, in a thread with its own loop; yields the port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["stop"] = asyncio.Event()
        async with running_service(app_settings) as (url, _service):
            state["port"] = int(url.rsplit(":", 1)[1])
            ready.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported by the waiting test thread
            state["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="fuzzed-service", daemon=True)
    thread.start()
    assert ready.wait(30), "service did not start"
    if "error" in state:
        raise state["error"]
    try:
        yield state["port"]
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(30)


class Client:
    """http.client on one keep-alive connection (a new one after the server closes it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return self.conn, True
        return self.conn, False

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], chunked: bool = False
    ) -> tuple[int, bytes]:
        for _attempt in range(2):
            conn, fresh = self._connection()
            try:
                data: Any = body
                if chunked and body is not None:
                    data = (body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024))
                conn.request(method, path, body=data, headers=headers, encode_chunked=chunked)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.will_close:
                    self.close()
                self.statuses[resp.status] += 1
                return resp.status, payload
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if fresh:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def check(self, status: int, payload: bytes, what: str) -> None:
        """Never a 5xx; a 4xx carries {"error": "<one line>"}."""
        if status >= 500:
            self.failures.append(f"{status} for {what}: {payload[:300]!r}")
        assert status < 500, f"{status} for {what}: {payload[:300]!r}"
        if 400 <= status < 500:
            answer = json.loads(payload)
            assert isinstance(answer.get("error"), str) and answer["error"], answer
            assert "\n" not in answer["error"] and len(answer["error"]) <= 300, answer


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    with service_thread(intake_settings(tmp_path_factory.mktemp("fuzz"))) as port:
        client = Client(port)
        # warm-up: the largest bodies first, so that the baseline already has the heap grown to
        # its high-water mark (glibc keeps freed large blocks); then one of each fixture
        for size in (20 * MiB, 25 * MiB + 1):
            big = json.dumps({"padding": "x" * size}).encode()
            for chunked in (False, True):
                client.request("POST", "/webhooks/github", big, github_headers(big, "ping"), chunked)
        del big
        for event, body in GITHUB:
            client.request("POST", "/webhooks/github", body, github_headers(body, event))
        client.statuses.clear()
        state = {"client": client, "rss_before": rss_bytes(), "started": time.monotonic()}
        yield state
        client.close()


def github_headers(body: bytes, event: str, signature: str | None = None) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body) if signature is None else signature,
        "Content-Type": "application/json",
    }


GERRIT_HEADERS = {"X-Patchwarden-Token": HOOK_SECRET, "Content-Type": "application/json"}


def post_github(fuzzed: dict, body: bytes, event: str, **kw: Any) -> int:
    client: Client = fuzzed["client"]
    status, payload = client.request("POST", "/webhooks/github", body, github_headers(body, event, **kw))
    client.check(status, payload, f"github {event} {body[:100]!r}")
    return status


def post_gerrit(fuzzed: dict, body: bytes, headers: dict[str, str] | None = None, path: str = "") -> int:
    client: Client = fuzzed["client"]
    status, payload = client.request("POST", "/webhooks/gerrit" + path, body, headers or GERRIT_HEADERS)
    client.check(status, payload, f"gerrit {body[:100]!r}")
    return status


# -- strategies -------------------------------------------------------------------------------
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["opened", "synchronize", "created", "rerequested", "patchset-created", "comment-added"]
    )
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)  # fmt: skip


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def deep_bodies(draw) -> bytes:
    depth = draw(st.integers(min_value=100, max_value=20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"change":', b"}")]))
    return opener * depth + draw(st.sampled_from([b"1", b"null", b"{}", b""])) + closer * depth


NUMBER_TEMPLATES = [
    b'{"action":"opened","pull_request":{"number":@}}',
    b'{"type":"patchset-created","change":{"project":"p","number":@,"branch":"b"},'
    b'"patchSet":{"number":1,"revision":"' + b"a" * 40 + b'"},"eventCreatedOn":@}',
]


@st.composite
def special_numbers(draw) -> bytes:
    """A fixture-shaped body whose number field holds what json.dumps never writes."""
    raw = draw(
        st.sampled_from([b"1e999", b"-1e999", b"NaN", b"Infinity", b"9" * 5000, b"1.5", b"-0", b"1e-999"])
    )
    return draw(st.sampled_from(NUMBER_TEMPLATES)).replace(b"@", raw)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated(draw, base: Any) -> bytes:
    """``base`` with one to three fields replaced by random JSON or deleted, or its bytes damaged."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    body = _dumps(doc)
    if draw(st.integers(0, 9)) == 0:  # byte-level damage
        at = draw(st.integers(0, max(0, len(body) - 1)))
        body = body[:at] + draw(st.binary(max_size=4)) + body[at + draw(st.integers(0, 4)) :]
    return body


github_fixture = st.sampled_from(GITHUB)
gerrit_fixture = st.sampled_from(GERRIT)


# -- the fuzz tests ---------------------------------------------------------------------------
@fuzz(450)
@given(body=st.one_of(json_values.map(_dumps), deep_bodies(), special_numbers(), st.binary(max_size=300)),
       event=st.sampled_from(GITHUB_EVENTS))  # fmt: skip
def test_random_signed_github_bodies(fuzzed, body, event):
    post_github(fuzzed, body, event)


@fuzz(450)
@given(body=st.one_of(json_values.map(_dumps), deep_bodies(), special_numbers(), st.binary(max_size=300)))
def test_random_gerrit_bodies(fuzzed, body):
    post_gerrit(fuzzed, body)


@fuzz(450)
@given(data=st.data())
def test_mutated_github_fixtures(fuzzed, data):
    event, raw = data.draw(github_fixture)
    post_github(fuzzed, data.draw(mutated(json.loads(raw))), event)


@fuzz(350)
@given(data=st.data())
def test_mutated_gerrit_fixtures(fuzzed, data):
    post_gerrit(fuzzed, data.draw(mutated(data.draw(gerrit_fixture))))


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@fuzz(300)
@given(
    fixture=github_fixture,
    signature=st.one_of(
        header_text,
        st.builds(lambda h: "sha256=" + h, st.text("0123456789abcdef", min_size=60, max_size=68)),
        st.builds(lambda h: "sha1=" + h, st.text("0123456789abcdef", min_size=40, max_size=40)),
    ),
    event=st.one_of(st.sampled_from(GITHUB_EVENTS), header_text),
    token=st.one_of(st.none(), header_text),
    in_query=st.booleans(),
)
def test_wrong_or_missing_credentials(fuzzed, fixture, signature, event, token, in_query):
    """Bad signatures and tokens are refused with 401, whatever the headers around them say."""
    _event, body = fixture
    assert post_github(fuzzed, body, event, signature=signature) in (400, 401)
    headers = {"Content-Type": "application/json"}
    path = ""
    if token is not None and in_query:
        path = "?token=" + token.replace("&", "").replace("#", "").replace(" ", "+")
    elif token is not None:
        headers["X-Patchwarden-Token"] = token
    assert post_gerrit(fuzzed, _dumps(GERRIT[0]), headers, path) == 401


@fuzz(200)
@given(fixture=github_fixture, gerrit=gerrit_fixture, chunked=st.booleans())
def test_valid_signed_fixtures_are_accepted(fuzzed, fixture, gerrit, chunked):
    client: Client = fuzzed["client"]
    event, body = fixture
    status, payload = client.request("POST", "/webhooks/github", body, github_headers(body, event), chunked)
    assert status in (200, 202), payload[:300]
    status, payload = client.request("POST", "/webhooks/gerrit", _dumps(gerrit), GERRIT_HEADERS, chunked)
    assert status in (200, 202), payload[:300]


@pytest.mark.parametrize("size", [100_000, 1 * MiB, 5 * MiB, 20 * MiB], ids=["0.1MB", "1MB", "5MB", "20MB"])
def test_large_valid_signed_bodies_are_accepted(fuzzed, size):
    client: Client = fuzzed["client"]
    payload = json.loads(dict((name, body) for name, body in GITHUB)["pull_request"])
    payload["pull_request"]["body"] = "".join(random.choices("abc def\n", k=size))
    body = json.dumps(payload).encode()
    for chunked in (False, True):
        status, answer = client.request(
            "POST", "/webhooks/github", body, github_headers(body, "pull_request"), chunked
        )
        assert status in (200, 202), answer[:300]
    event = copy.deepcopy(GERRIT[0])
    event["change"]["commitMessage"] = payload["pull_request"]["body"]
    status, answer = client.request("POST", "/webhooks/gerrit", _dumps(event), GERRIT_HEADERS)
    assert status in (200, 202), answer[:300]


def test_bodies_over_the_limit_get_413(fuzzed):
    client: Client = fuzzed["client"]
    body = json.dumps({"padding": "x" * (25 * MiB + 1)}).encode()
    for chunked in (False, True):
        status, answer = client.request(
            "POST", "/webhooks/github", body, github_headers(body, "ping"), chunked
        )
        client.check(status, answer, "over the limit")
        assert status == 413
        status, answer = client.request("POST", "/webhooks/gerrit", body, GERRIT_HEADERS, chunked)
        client.check(status, answer, "over the limit")
        assert status == 413


def test_service_still_up_and_memory_flat(fuzzed):
    client: Client = fuzzed["client"]
    status, payload = client.request("GET", "/healthz", None, {})
    assert status == 200, payload
    total = sum(client.statuses.values())
    rss_after = rss_bytes()
    print(
        f"\nwebhook fuzz: {total} requests in {time.monotonic() - fuzzed['started']:.1f} s, "
        f"statuses {dict(sorted(client.statuses.items()))}, "
        f"RSS {fuzzed['rss_before'] / MiB:.0f} -> {rss_after / MiB:.0f} MiB"
    )
    assert total >= 2000
    assert not [s for s in client.statuses if s >= 500] and not client.failures
    assert rss_after - fuzzed["rss_before"] < 128 * MiB, "resident memory grew: a leak?"

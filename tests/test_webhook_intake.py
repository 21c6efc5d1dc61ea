"""Webhook intake: whole bodies up to the limit, 4xx (never 5xx) for malformed deliveries, strict
signatures, bounded metric labels, the Gerrit token. The real aiohttp app on a loopback port,
real HTTP; intake needs neither GitHub nor Gerrit, so both point at an unused loopback port."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import ServerSettings, load_settings
from bot.platforms import gerrit_events
from tests.fakes.gerrit import FakeGerrit, generate_ssh_keypair
from tests.service import FIXTURES, SECRET, free_port, make_settings, running_service, sign, wait_until

HOOK_SECRET = "gerrit-hook-secret"
MiB = 1024 * 1024


# -- shared with tests/test_webhook_fuzz.py and bench/fuzz_webhooks.py --------------------------
def intake_settings(tmp_path: Path, **server: Any):
    """GitHub (token mode) and Gerrit (webhook source) both configured; no worker scans."""
    unused = f"http://127.0.0.1:{free_port()}"
    return make_settings(
        tmp_path,
        {
            "server": {"data_dir": str(tmp_path / "data"), "workers": 0, **server},
            "github": {"api_url": unused, "token": "t", "webhook_secret": SECRET, "write_interval": 0},
            "gerrit": {
                "url": unused,
                "user": "patchwarden",
                "http_password": "pw",
                "event_source": "webhook",
                "webhook_secret": HOOK_SECRET,
            },
        },
    )


def github_fixtures() -> list[tuple[str, bytes]]:
    """(X-GitHub-Event, exact body bytes) of every GitHub fixture (named <event>.<action>[.n].json)."""
    return [(p.name.split(".", 1)[0], p.read_bytes()) for p in sorted((FIXTURES / "github").glob("*.json"))]


def gerrit_fixtures() -> list[bytes]:
    """Every Gerrit stream-event fixture (files and sample lines) and the webhook delivery body."""
    events = FIXTURES / "gerrit" / "stream-events"
    bodies = [p.read_bytes() for p in sorted(events.glob("*.json"))]
    bodies += [
        line.encode() for line in (events / "stream-events.sample.jsonl").read_text().splitlines() if line
    ]
    delivery = json.loads((FIXTURES / "gerrit" / "webhooks" / "patchset-created.delivery.json").read_text())
    bodies.append(json.dumps(delivery["body"], separators=(",", ":")).encode())
    return bodies


def github_headers(body: bytes, event: str = "pull_request", delivery: str | None = None) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
    }


async def _chunks(body: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], chunked: bool = False
) -> tuple[int, Any]:
    """POST ``body`` (Content-Length, or chunked transfer encoding); (status, decoded JSON or text)."""
    data: Any = _chunks(body) if chunked else body
    async with session.post(url, data=data, headers=headers) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def assert_one_line_error(status: int, answer: Any, expected: int | tuple[int, ...] = 400) -> None:
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert status in expected, (status, answer)
    assert isinstance(answer, dict) and isinstance(answer.get("error"), str), answer
    assert answer["error"] and "\n" not in answer["error"] and len(answer["error"]) <= 300, answer


@pytest.fixture
async def intake(tmp_path):
    async with (
        running_service(intake_settings(tmp_path)) as (url, service),
        aiohttp.ClientSession() as session,
    ):
        yield url, service, session


def gerrit_hook(url: str) -> str:
    return url + "/webhooks/gerrit"


GERRIT_HEADERS = {"X-Patchwarden-Token": HOOK_SECRET, "Content-Type": "application/json; charset=utf-8"}


def pr_opened(**changes: Any) -> dict[str, Any]:
    payload = json.loads((FIXTURES / "github" / "pull_request.opened.2.json").read_text())
    payload["pull_request"].update(changes)
    return payload


def patchset_created(patchset: int | None = None) -> dict[str, Any]:
    """The fixture event; with ``patchset``, that patchset of the change (a revision of its own)."""
    event = json.loads((FIXTURES / "gerrit" / "stream-events" / "patchset-created.json").read_text())
    if patchset is not None:
        event["patchSet"].update(number=patchset, revision=hashlib.sha1(b"%d" % patchset).hexdigest())
    return event


# -- hole 1: the whole body, up to a limit that fits GitHub's 25 MB ----------------------------
def test_default_body_limit_fits_githubs_25_mb_payloads():
    assert ServerSettings().max_body_bytes >= 25 * MiB
    assert load_settings(None, environ={}).server.max_body_bytes == ServerSettings().max_body_bytes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_large_valid_deliveries_are_read_whole_and_accepted(intake, chunked):
    url, _service, session = intake
    body = json.dumps(pr_opened(body="A long description. " * (3 * MiB // 20))).encode()
    status, answer = await post(session, url + "/webhooks/github", body, github_headers(body), chunked)
    assert (status, answer["status"]) == (202, "queued"), answer

    event = patchset_created(3 if chunked else 4)
    event["change"]["commitMessage"] = "Subject\n\n" + "A long commit message line.\n" * (3 * MiB // 28)
    status, answer = await post(
        session, gerrit_hook(url), json.dumps(event).encode(), GERRIT_HEADERS, chunked
    )
    assert (status, answer["status"]) == (202, "queued"), answer


async def test_bodies_over_the_limit_get_413_with_content_length_or_chunked(tmp_path):
    limit = 1 * MiB
    async with (
        running_service(intake_settings(tmp_path, max_body_bytes=limit)) as (url, _service),
        aiohttp.ClientSession() as session,
    ):
        base = json.dumps(pr_opened(body="")).encode()
        exact = json.dumps(pr_opened(body="x" * (limit - len(base)))).encode()
        assert len(exact) == limit
        status, answer = await post(session, url + "/webhooks/github", exact, github_headers(exact))
        assert status == 202, answer  # exactly the limit is fine

        over = json.dumps(pr_opened(body="x" * (limit - len(base) + 1))).encode()
        for chunked in (False, True):
            status, answer = await post(
                session, url + "/webhooks/github", over, github_headers(over), chunked
            )
            assert_one_line_error(status, answer, 413)
            event = patchset_created()
            event["change"]["commitMessage"] = "x" * limit
            status, answer = await post(
                session, gerrit_hook(url), json.dumps(event).encode(), GERRIT_HEADERS, chunked
            )
            assert_one_line_error(status, answer, 413)
        big = b'{"padding": "' + b"x" * (6 * MiB) + b'"}'  # the attacker's 6 MiB chunked, signed
        status, answer = await post(session, url + "/webhooks/github", big, github_headers(big), chunked=True)
        assert_one_line_error(status, answer, 413)


# -- hole 2: malformed deliveries get a 4xx with a one-line reason, never a 500 ----------------
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


def _pr(mutate) -> bytes:
    payload = pr_opened()
    mutate(payload)
    return json.dumps(payload).encode()


def _raw_number(text: str) -> bytes:
    return json.dumps(pr_opened(number="@N@")).encode().replace(b'"@N@"', text.encode())


def _fixture(name: str, mutate) -> bytes:
    payload = json.loads((FIXTURES / "github" / name).read_text())
    mutate(payload)
    return json.dumps(payload).encode()


MALFORMED_GITHUB = {
    "deep-array": ("pull_request", DEEP_ARRAY),
    "deep-object": ("pull_request", DEEP_OBJECT),
    "number-null": ("pull_request", _pr(lambda p: p["pull_request"].update(number=None))),
    "number-1e999": ("pull_request", _raw_number("1e999")),
    "number-NaN": ("pull_request", _raw_number("NaN")),
    "number-huge": ("pull_request", _raw_number("9" * 5000)),
    "number-string": ("pull_request", _pr(lambda p: p["pull_request"].update(number="2"))),
    "number-bool": ("pull_request", _pr(lambda p: p["pull_request"].update(number=True))),
    "action-list": ("pull_request", _pr(lambda p: p.update(action=["opened"]))),
    "head-sha-int": ("pull_request", _pr(lambda p: p["pull_request"]["head"].update(sha=1))),
    "repository-string": ("pull_request", _pr(lambda p: p.update(repository="x"))),
    "repo-name-path": ("pull_request", _pr(lambda p: p["repository"].update(full_name="../../etc"))),
    "pull_request-list": ("pull_request", _pr(lambda p: p.update(pull_request=[]))),
    "ping-installation-int": ("ping", _fixture("ping.2.json", lambda p: p.update(installation=1))),
    "installation-account-int": (
        "installation",
        _fixture("installation.created.1.json", lambda p: p["installation"].update(account=1)),
    ),
    "comment-id-bool": (
        "issue_comment",
        _fixture("issue_comment.created.4.json", lambda p: p["comment"].update(id=True)),
    ),
    "comment-body-int": (
        "issue_comment",
        _fixture("issue_comment.created.4.json", lambda p: p["comment"].update(body=5)),
    ),
    "check_run-prs-int": (
        "check_run",
        _fixture("check_run.rerequested.1.json", lambda p: p["check_run"].update(pull_requests=[1])),
    ),
    "unknown-event-action-object": ("merge_group", b'{"action": {"x": 1}}'),
    "top-level-list": ("pull_request", b"[1, 2]"),
    "lone-surrogate": ("pull_request", b'{"action": "\\ud800"}'),
    "invalid-utf8": ("pull_request", b'{"action": "\xff"}'),
    "empty": ("pull_request", b""),
}


@pytest.mark.parametrize("name", list(MALFORMED_GITHUB))
async def test_malformed_signed_github_deliveries_get_400(intake, name):
    url, _service, session = intake
    event, body = MALFORMED_GITHUB[name]
    status, answer = await post(session, url + "/webhooks/github", body, github_headers(body, event))
    assert_one_line_error(status, answer, 400)


def _gerrit(mutate, base: dict[str, Any] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(base) if base is not None else patchset_created()
    mutate(event)
    return event


REF_UPDATED = json.loads((FIXTURES / "gerrit" / "stream-events" / "ref-updated.json").read_text())
COMMENT_ADDED = json.loads((FIXTURES / "gerrit" / "stream-events" / "comment-added.json").read_text())
MALFORMED_GERRIT: dict[str, Any] = {
    "change-int": _gerrit(lambda e: e.update(change=1)),
    "change-number-null": _gerrit(lambda e: e["change"].update(number=None)),
    "change-number-inf": _gerrit(lambda e: e["change"].update(number=float("inf"))),
    "change-number-float": _gerrit(lambda e: e["change"].update(number=2.5)),
    "change-project-int": _gerrit(lambda e: e["change"].update(project=7)),
    "patchSet-number-null": _gerrit(lambda e: e["patchSet"].update(number=None)),
    "patchSet-string": _gerrit(lambda e: e.update(patchSet="2")),
    "revision-int": _gerrit(lambda e: e["patchSet"].update(revision=5)),
    "wip-string": _gerrit(lambda e: e["change"].update(wip="yes")),
    "uploader-int": _gerrit(lambda e: e.update(uploader=1)),
    "author-list": _gerrit(lambda e: e.update(author=[])),
    "comment-int": _gerrit(lambda e: e.update(comment=3), COMMENT_ADDED),
    "tag-list": _gerrit(lambda e: e.update(tag=["autogenerated:x"]), COMMENT_ADDED),
    # fields read for every event, handled or not (the stream stores eventCreatedOn)
    "unhandled-change-int": _gerrit(lambda e: e.update(change=1), REF_UPDATED),
    "eventCreatedOn-bool": _gerrit(lambda e: e.update(eventCreatedOn=True), REF_UPDATED),
    "eventCreatedOn-inf": _gerrit(lambda e: e.update(eventCreatedOn=float("inf")), REF_UPDATED),
    "eventCreatedOn-huge": _gerrit(lambda e: e.update(eventCreatedOn=10**30), REF_UPDATED),
    "type-int": _gerrit(lambda e: e.update(type=1), REF_UPDATED),
    "type-missing": _gerrit(lambda e: e.pop("type"), REF_UPDATED),
}
MALFORMED_GERRIT_RAW = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "not-json": b"{oops",
    "top-level-list": b"[]",
    "number-1e999": json.dumps(_gerrit(lambda e: e["change"].update(number="@N@")))
    .encode()
    .replace(b'"@N@"', b"1e999"),
    "NaN": b'{"type": "ref-updated", "eventCreatedOn": NaN}',
    "lone-surrogate": b'{"type": "\\udc80"}',
}


@pytest.mark.parametrize("name", list(MALFORMED_GERRIT) + list(MALFORMED_GERRIT_RAW))
async def test_malformed_gerrit_webhooks_get_400(intake, name):
    url, _service, session = intake
    body = MALFORMED_GERRIT_RAW.get(name) or json.dumps(MALFORMED_GERRIT.get(name)).encode()
    status, answer = await post(session, gerrit_hook(url), body, GERRIT_HEADERS)
    assert_one_line_error(status, answer, 400)


@pytest.mark.parametrize("name", list(MALFORMED_GERRIT))
async def test_stream_lines_go_through_the_same_validation(name):
    """What the SSH stream hands to decide(): an unreadable event is a ValueError (the stream logs
    and skips it), never a TypeError or AttributeError, and never an event it would then misread."""
    settings = load_settings(None, environ={}).gerrit
    with pytest.raises(ValueError) as caught:
        await gerrit_events.decide(json.loads(json.dumps(MALFORMED_GERRIT[name])), settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", list(MALFORMED_GERRIT_RAW))
def test_stream_line_parser_refuses_what_is_not_an_event(name):
    with pytest.raises(ValueError):
        gerrit_events.validate_event(gerrit_events.parse_event(MALFORMED_GERRIT_RAW[name]))


async def test_every_real_payload_fixture_is_accepted(intake):
    url, _service, session = intake
    for event, body in github_fixtures():
        status, answer = await post(session, url + "/webhooks/github", body, github_headers(body, event))
        assert status in (200, 202), (event, answer)
    for number, body in enumerate(gerrit_fixtures()):
        status, answer = await post(session, gerrit_hook(url), body, GERRIT_HEADERS)
        assert status in (200, 202), (number, body[:80], answer)
        data = gerrit_events.parse_event(body)
        await gerrit_events.decide(data, load_settings(None, environ={}).gerrit)  # the stream's path


async def test_raw_header_bytes_never_crash_intake(intake):
    """Header values that are not UTF-8 (aiohttp hands them over surrogate-escaped)."""
    url, _service, _session = intake
    port = int(url.rsplit(":", 1)[1])
    for path, header in (
        (b"/webhooks/gerrit", b"X-Patchwarden-Token: \xff\xfe\x80"),
        (b"/webhooks/gerrit?token=%FF%FE", b"X-Other: 1"),
        (b"/webhooks/github", b"X-Hub-Signature-256: sha256=\xff" + b"0" * 63),
        (b"/webhooks/github", b"X-GitHub-Delivery: \xff\xfe\r\nX-Hub-Signature-256: " + sign(b"{}").encode()),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: ping\r\n" + header + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        status = int(response.split(b" ", 2)[1])
        assert 400 <= status < 500, response[:300]
        assert b'"error"' in response, response[:300]


# -- hole 3: metric labels only from known names, and only once authenticated ------------------
async def _metrics(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics") as resp:
        return await resp.text()


async def test_unauthenticated_input_never_becomes_a_metric_label(intake):
    url, _service, session = intake
    marker = "zz" + uuid.uuid4().hex
    body = json.dumps(pr_opened()).encode()
    headers = {**github_headers(body, marker), "X-Hub-Signature-256": "sha256=" + "0" * 64}
    status, answer = await post(session, url + "/webhooks/github", body, headers)
    assert_one_line_error(status, answer, 401)
    # signed, but an event name the bot does not know: counted as "other"
    status, answer = await post(session, url + "/webhooks/github", body, github_headers(body, marker))
    assert status == 200 and answer["status"] == "ignored"
    # Gerrit: a wrong token, then an authenticated event of an unknown type
    event = json.dumps({"type": f"x-{marker}", "eventCreatedOn": 1}).encode()
    status, answer = await post(session, gerrit_hook(url) + f"?token={marker}", event, {})
    assert_one_line_error(status, answer, 401)
    status, answer = await post(session, gerrit_hook(url), event, GERRIT_HEADERS)
    assert status == 200 and answer["status"].startswith("ignored")
    text = await _metrics(session, url)
    assert marker not in text
    assert 'patchwarden_webhooks_total{event="other",outcome="401",platform="github"}' in text
    assert 'patchwarden_webhooks_total{event="other",outcome="ignored",platform="github"}' in text
    assert 'patchwarden_webhooks_total{event="other",outcome="401",platform="gerrit"}' in text
    assert 'patchwarden_stream_events_total{type="other"}' in text


async def test_known_events_are_labelled_by_name_after_verification(intake):
    url, _service, session = intake
    body = (FIXTURES / "github" / "ping.2.json").read_bytes()
    assert (await post(session, url + "/webhooks/github", body, github_headers(body, "ping")))[0] == 200
    text = await _metrics(session, url)
    assert 'patchwarden_webhooks_total{event="ping",outcome="ignored",platform="github"}' in text


# -- hole 4: only sha256=<64 hex>, compared over the exact bytes -------------------------------
async def test_only_sha256_signatures_are_accepted(intake):
    url, _service, session = intake
    body = json.dumps(pr_opened()).encode()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    good = sign(body)
    for value in (
        sha1,  # a correct SHA-1 HMAC in the SHA-256 header
        good[:-1],
        good + "0",
        good.replace("sha256=", "sha256:"),
        good.replace("sha256=", "SHA256="),
        "sha256=" + "g" * 64,
        good.replace("sha256=", "sha512="),
        "",
    ):
        headers = {**github_headers(body), "X-Hub-Signature-256": value}
        status, answer = await post(session, url + "/webhooks/github", body, headers)
        assert_one_line_error(status, answer, 401)
        assert "X-Hub-Signature-256" in answer["error"], answer
    legacy_only = {k: v for k, v in github_headers(body).items() if k != "X-Hub-Signature-256"}
    legacy_only["X-Hub-Signature"] = sha1
    status, answer = await post(session, url + "/webhooks/github", body, legacy_only)
    assert_one_line_error(status, answer, 401)
    altered = body.replace(b'"opened"', b'"opened" ')  # same JSON, other bytes
    status, answer = await post(session, url + "/webhooks/github", altered, github_headers(body))
    assert_one_line_error(status, answer, 401)
    status, answer = await post(session, url + "/webhooks/github", body, github_headers(body))
    assert status == 202, answer


# -- hole 5: the Gerrit token: header preferred, ?token= warned about once ----------------------
async def test_gerrit_token_in_the_query_works_and_is_warned_about_once(intake, caplog):
    url, _service, session = intake
    caplog.set_level("WARNING")
    for number in (1, 2):
        event = patchset_created(number)
        body = json.dumps(event).encode()
        status, _ = await post(session, gerrit_hook(url), body, GERRIT_HEADERS)
        assert status == 202
    assert "?token=" not in caplog.text, "the header form is not warned about"
    status, answer = await post(session, gerrit_hook(url) + "?token=wrong", body, {})
    assert_one_line_error(status, answer, 401)
    for number in (3, 4):
        event = patchset_created(number)
        status, _ = await post(
            session, gerrit_hook(url) + "?token=" + HOOK_SECRET, json.dumps(event).encode(), {}
        )
        assert status == 202
    warnings = [r for r in caplog.records if "?token=" in r.getMessage()]
    assert len(warnings) == 1 and "X-Patchwarden-Token" in warnings[0].getMessage()
    assert HOOK_SECRET not in caplog.text


# -- the SSH stream: an unreadable line is logged and skipped, the stream stays up -------------
PROJECT = "openstack/nova"


@pytest.fixture
async def gerrit(tmp_path):
    async with FakeGerrit(user="patchwarden", http_password="pw") as g:
        key_path, public = generate_ssh_keypair(tmp_path / "ssh")
        g.authorize_ssh_key(public)
        known_hosts = tmp_path / "ssh" / "known_hosts"
        known_hosts.write_text(g.known_hosts_line() + "\n")
        g.set_branch_file(PROJECT, "master", "a.py", b"x = 1\n")
        g.owner = g.add_account("Jane Dev", "jdev", "jane@example.com")  # type: ignore[attr-defined]
        g.key_path, g.known_hosts = key_path, known_hosts  # type: ignore[attr-defined]
        yield g


async def test_stream_skips_unreadable_events_without_reconnecting(tmp_path, gerrit, caplog):
    settings = make_settings(
        tmp_path,
        {
            "server": {"data_dir": str(tmp_path / "data"), "workers": 0},
            "gerrit": {
                "url": gerrit.url,
                "user": "patchwarden",
                "http_password": "pw",
                "ssh_port": gerrit.ssh_port,
                "ssh_key_file": str(gerrit.key_path),
                "ssh_known_hosts": str(gerrit.known_hosts),
            },
        },
    )
    caplog.set_level("INFO")
    async with running_service(settings) as (_url, service):
        await gerrit.wait_for_stream(1, timeout=10)
        change = gerrit.create_change(
            PROJECT, "master", gerrit.owner, "x", files={"a.py": b"x = 2\n"}, emit=False
        )
        good = gerrit.patchset_created_event(change)
        bad = [
            _gerrit(lambda e: e["change"].update(number=None), good),
            _gerrit(lambda e: e["patchSet"].update(number=None), good),
            _gerrit(lambda e: e["change"].update(number=float("inf")), good),
            _gerrit(lambda e: e.update(uploader=1), good),
            _gerrit(lambda e: e.update(eventCreatedOn=True), good),
        ]
        for event in bad:
            gerrit.emit(event)
        gerrit.emit(good)

        async def queued() -> bool:
            return any(job["key"].endswith(f"~{change.number}") for job in await service.queue.jobs())

        await wait_until(queued, timeout=20, what="the valid event's job")
        assert gerrit.stream_count == 1
    skipped = [r for r in caplog.records if r.getMessage().startswith("unreadable Gerrit event")]
    assert len(skipped) == len(bad), caplog.text[-3000:]
    assert "failed unexpectedly" not in caplog.text and "reconnecting" not in caplog.text

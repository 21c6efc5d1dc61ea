"""GitHub adapter: fetch a pull request's change, publish one review, a check run and replies.

Transport is gidgethub (async, on the service's aiohttp session) rather than PyGithub, whose
blocking ``requests`` calls would stall the event loop that also answers webhooks. gidgethub
mints App JWTs and installation tokens, and its rate-limit hooks carry response headers,
which is what Retry-After / X-RateLimit-Reset handling needs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from gidgethub import BadRequest, GitHubBroken, HTTPException
from gidgethub.aiohttp import GitHubAPI
from gidgethub.apps import get_installation_access_token, get_jwt

from bot import metrics
from bot.config import REPO_CONFIG_PATHS, CommandSettings, ConfigError, GitHubSettings, RepoConfig, Settings
from bot.diff import diff_contents, parse_file_patch
from bot.model import Change, ChangedFile, Comment, FileStatus, Review, over_limit
from bot.platforms import github_threads
from bot.platforms.base import (
    DUPLICATE_DELIVERY,
    EventSink,
    Job,
    JobRequest,
    NotReviewable,
    PermanentError,
    PlatformSpec,
    Rejected,
    Route,
    SharedStore,
    Skip,
    Target,
    TransientError,
    Wants,
    WebhookError,
    skip_listed,
)
from bot.platforms.changes import FileEntry, load_files
from bot.platforms.commands import CommandLimits, SlidingWindow, admit_and_queue
from bot.platforms.github_events import (
    GitHubJob,
    decide,
    decode_webhook,
    one_line,
    signature_header,
    verify_signature,
)
from bot.platforms.intake import not_ready, read_body, rejected
from bot.platforms.publishing import Plan, Thread, plan, post_in_batches, summary_message
from bot.platforms.retrying import header, policy, retry_after
from bot.render import suggestion_block
from bot.triage import Ignore, IgnoreCommand, Triaged, confirmation
from bot.triage import apply as apply_triage
from bot.triage_store import TriageStore, open_store

log = logging.getLogger(__name__)

MARKER = "<!-- patchwarden:fingerprint={} -->"
FIXED_MARKER = "<!-- patchwarden:fixed={} -->"
REOPENED_MARKER = "<!-- patchwarden:reopened={} -->"
SUMMARY_MARKER = "<!-- patchwarden:summary -->"
RUN_MARKER = "<!-- patchwarden:run={} -->"  # which job posted it: a retry can tell it landed
_FINGERPRINT = re.compile(r"<!-- patchwarden:fingerprint=([0-9a-f]+) -->")
_THREAD_STATE = re.compile(r"<!-- patchwarden:(fixed|reopened)=([0-9a-f]+) -->")
_TITLE = re.compile(r"^\*\*(.+?)\*\*", re.MULTILINE)
_STATUS = {
    "added": FileStatus.ADDED,
    "removed": FileStatus.DELETED,
    "modified": FileStatus.MODIFIED,
    "changed": FileStatus.MODIFIED,
    "renamed": FileStatus.RENAMED,
    "copied": FileStatus.COPIED,
    "unchanged": FileStatus.MODIFIED,
}
CONTENT_CREATING = {"POST", "PATCH", "PUT", "DELETE"}
#: GitHub's documented limit on a check run's ``output.summary`` (characters).
CHECK_SUMMARY_MAX = 65535
#: The body of the partial reviews posted while bisecting a refused batch: GitHub documents
#: ``body`` as required for a COMMENT review, with or without comments.
PARTIAL_REVIEW_BODY = "Patchwarden: inline comments of this scan (its summary follows separately)."
_SHA = re.compile(r"[0-9a-f]{40}")


class Pacer:
    """GitHub's secondary limits on content-creating requests, kept by the bot itself: at most
    ``limits`` (requests, seconds) — by default 80 a minute and 500 an hour
    (rate-limits-for-the-rest-api.md, "About secondary rate limits") — in *any* such window.
    A burst goes out at once and the average stays under the limit, where a fixed gap would delay
    every first write; ``interval`` adds an optional minimum gap between writes."""

    def __init__(
        self,
        interval: float = 0.0,
        limits: Sequence[tuple[int, float]] = ((80, 60.0), (500, 3600.0)),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        # A request is counted here before it is sent and there when it arrives: a small margin
        # keeps a write that was delayed on its way from landing inside GitHub's window.
        self._limits = [(int(n), seconds * 1.02 + 0.1) for n, seconds in limits if n > 0]
        self._windows = [SlidingWindow(n, seconds, clock) for n, seconds in self._limits]
        self._last: float | None = None
        self._lock = asyncio.Lock()
        self.shared: SharedStore | None = None  # a fleet counts its writes together (Platform.share)

    def delay(self) -> float:
        """Seconds until a write may go (0: now)."""
        gap = 0.0 if self._last is None else max(0.0, self._last + self.interval - self.clock())
        return max([gap, *(w.retry_in("") for w in self._windows if not w.allows(""))])

    async def wait(self) -> None:
        async with self._lock:
            if self.shared is not None and await self._wait_shared():
                return
            while (delay := self.delay()) > 0:
                await asyncio.sleep(delay)
            for window in self._windows:
                window.record("")
            self._last = self.clock()

    async def _wait_shared(self) -> bool:
        """Until the fleet's windows have room for one more write (counted there); False when
        the shared store cannot be reached (then this process paces on its own)."""
        assert self.shared is not None
        try:
            while (delay := await self.shared.reserve("github:writes", self._limits, self.interval)) > 0:
                await asyncio.sleep(delay)
        except Exception as exc:
            log.warning("shared write pacing unavailable (%r): pacing this process alone", exc)
            return False
        return True


class PacedGitHubAPI(GitHubAPI):
    """gidgethub client that retries 5xx with backoff, honours Retry-After and
    X-RateLimit-Reset, and paces content-creating requests."""

    def __init__(
        self,
        *args: Any,
        pacer: Pacer,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        secondary_wait: float = 60.0,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.pacer = pacer
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        # GitHub: after a secondary rate limit with neither Retry-After nor x-ratelimit-remaining: 0,
        # "wait for at least one minute before retrying", then exponentially longer.
        self.secondary_wait = secondary_wait

    async def manage_rate_limit(self, *, method: str, url: str) -> None:  # type: ignore[override]
        if method.upper() in CONTENT_CREATING:
            await self.pacer.wait()

    async def handle_rate_limit_error(  # type: ignore[override]
        self, *, method: str, url: str, exception: HTTPException, attempt: int
    ) -> bool:
        if attempt >= self.max_attempts:
            return False
        status = int(exception.status_code)
        headers = getattr(exception, "headers", None) or {}
        delay: float | None = None
        if header(headers, "retry-after") is not None:
            hint = retry_after(headers)
            delay = 60.0 if hint is None else hint
        elif status in (403, 429) and header(headers, "x-ratelimit-remaining") == "0":
            reset = float(header(headers, "x-ratelimit-reset") or time.time() + 60)
            delay = max(0.0, reset - time.time()) + 1
        elif status == 429 or (status == 403 and "secondary rate limit" in str(exception).lower()):
            delay = self.secondary_wait * 2 ** (attempt - 1)
        elif method.upper() == "POST":
            return False  # a 5xx may hide an applied POST: the caller looks before writing again
        elif isinstance(exception, GitHubBroken) or status >= 500:
            delay = min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
        if delay is None:
            return False
        if delay > self.max_wait:
            log.warning("GitHub asks to wait %.0f s for %s %s: giving up for now", delay, method, url)
            return False
        log.info("GitHub %s on %s %s; retrying in %.1f s (attempt %d)", status, method, url, delay, attempt)
        await asyncio.sleep(delay)
        return True


@dataclass
class _Token:
    value: str
    expires: float


@dataclass(kw_only=True)
class GitHubTarget(Target):
    """A pull request resolved for one job."""

    gh: PacedGitHubAPI
    repo: str
    number: int
    pr: dict[str, Any] = field(repr=False)  # the pull request as GitHub described it
    head: str
    requested: bool  # /rescan or a re-run: always answered
    comment_id: int | None  # the /rescan comment, to acknowledge
    check_run_id: int | None = None  # set by begin()


def github_enabled(settings: Settings) -> bool:
    gh = settings.github
    return bool(gh.token or gh.app_id or gh.webhook_secret)


def check_github_settings(settings: Settings) -> None:
    gh = settings.github
    if not gh.webhook_secret:
        raise ConfigError(
            "PATCHWARDEN_GITHUB_WEBHOOK_SECRET (github.webhook_secret) is required: unsigned webhooks are refused"
        )
    if not gh.token and not (gh.app_id and gh.private_key_file):
        raise ConfigError(
            "GitHub credentials missing: set PATCHWARDEN_GITHUB_TOKEN, or PATCHWARDEN_GITHUB_APP_ID "
            "and PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE"
        )
    if gh.private_key_file and not gh.private_key_file.is_file():
        raise ConfigError(f"PATCHWARDEN_GITHUB_PRIVATE_KEY_FILE: {gh.private_key_file} does not exist")


class GitHubPlatform:
    name = "github"

    def __init__(
        self,
        settings: GitHubSettings,
        limits: CommandLimits | None = None,
        max_file_bytes: int = 10_000_000,
        max_body_bytes: int = 25 * 1024 * 1024,
        triage: TriageStore | None = None,
        ignore_limits: CommandLimits | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or CommandLimits()
        self.ignore_limits = ignore_limits or CommandLimits.from_settings(CommandSettings(), "ignore")
        self.triage = triage or open_store(None)
        self.graphql_url = github_threads.graphql_endpoint(settings.api_url)
        self.max_file_bytes = max_file_bytes  # engine.max_file_bytes: larger files are not fetched
        self.max_body_bytes = max_body_bytes  # server.max_body_bytes: larger webhooks get 413
        self.sink: EventSink | None = None  # set by start()
        self.pacer = Pacer(settings.write_interval, settings.write_limits)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[int, _Token] = {}
        self._token_lock = asyncio.Lock()
        self.shared: SharedStore | None = None  # set by share()
        self._private_key = settings.private_key_file.read_bytes() if settings.private_key_file else None
        self._bot_login = settings.bot_login
        self._no_check_runs = False  # a credential refused once (403: not an App) is not asked again
        self._check_runs_answered = False  # until then, one creation at a time (workers race otherwise)
        self._check_run_probe = asyncio.Lock()

    # -- transport -----------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)
            )
        return self._session

    def _api(self, token: str | None) -> PacedGitHubAPI:
        return PacedGitHubAPI(
            self.session(),
            "patchwarden",
            oauth_token=token,
            base_url=self.settings.api_url.rstrip("/"),
            pacer=self.pacer,
        )

    def share(self, store: SharedStore | None) -> None:
        self.shared = self.pacer.shared = self.limits.shared = self.ignore_limits.shared = store

    async def installation_token(self, installation_id: int) -> str:
        """An installation access token, cached until five minutes before it expires (in the
        fleet's shared store too, so N workers do not ask for N tokens)."""
        async with self._token_lock:
            cached = self._tokens.get(installation_id)
            if cached and cached.expires - 300 > time.time():
                return cached.value
            if (cached := await self._shared_token(installation_id)) is not None:
                self._tokens[installation_id] = cached
                return cached.value
            assert self.settings.app_id is not None and self._private_key is not None
            data = await get_installation_access_token(
                self._api(None),
                installation_id=str(installation_id),
                app_id=str(self.settings.app_id),
                private_key=self._private_key.decode(),
            )
            expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
            self._tokens[installation_id] = _Token(data["token"], expires)
            if self.shared is not None and expires - 300 > time.time():
                with contextlib.suppress(Exception):  # best effort: each process can get its own
                    value = json.dumps({"token": data["token"], "expires": expires})
                    await self.shared.put(
                        f"github:token:{installation_id}", value, expires - 300 - time.time()
                    )
            return data["token"]

    async def _shared_token(self, installation_id: int) -> _Token | None:
        if self.shared is None:
            return None
        try:
            value = await self.shared.get(f"github:token:{installation_id}")
            data = json.loads(value) if value else None
        except Exception as exc:
            log.warning("shared installation tokens unavailable: %r", exc)
            return None
        if not data or float(data["expires"]) - 300 <= time.time():
            return None
        return _Token(str(data["token"]), float(data["expires"]))

    async def api_for(self, installation_id: int | None) -> PacedGitHubAPI:
        if self.settings.app_id and self._private_key:
            if installation_id is None:
                raise PermanentError("event has no installation id but the bot runs as a GitHub App")
            return self._api(await self.installation_token(installation_id))
        return self._api(self.settings.token)

    async def bot_login(self, gh: PacedGitHubAPI) -> str:
        """Our own login, to recognise our comments (markers alone could be forged by anyone)."""
        if self._bot_login is None:
            if self.settings.app_id and self._private_key:
                jwt = get_jwt(app_id=str(self.settings.app_id), private_key=self._private_key.decode())
                app = await gh.getitem("/app", jwt=jwt)
                self._bot_login = f"{app['slug']}[bot]"
            else:
                self._bot_login = (await gh.getitem("/user"))["login"]
        return self._bot_login

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.triage.close()

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubPlatform:
        return cls(
            settings.github,
            CommandLimits.from_settings(settings.commands),
            settings.engine.max_file_bytes,
            settings.server.max_body_bytes,
            open_store(settings.server.data_dir, settings.server.queue_url),
            CommandLimits.from_settings(settings.commands, "ignore"),
        )

    # -- events --------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [Route("POST", "/webhooks/github", self.webhook)]

    def start(self, sink: EventSink) -> list[Any]:
        self.sink = sink
        return []

    def health(self) -> str | None:
        return None

    async def webhook(self, request: web.Request) -> web.Response:
        """Verify, validate and decide one delivery; queue its jobs (202) or say why not."""
        if self.sink is None:
            return not_ready()
        secret = self.settings.webhook_secret
        if not secret:
            return web.json_response({"error": "GitHub is not configured on this server"}, status=404)
        verified: str | None = None  # the event name, once the signature checks out
        try:
            signature = signature_header(request.headers)  # malformed or missing: 401 before reading on
            body = await read_body(request, self.max_body_bytes)
            verify_signature(signature, body, secret)
            verified = request.headers.get("X-GitHub-Event")
            event = decode_webhook(request.headers, body)
            decision = await decide(event, self.settings)
        except WebhookError as exc:
            return rejected("github", verified, exc)
        if not decision.jobs:
            reason = one_line(str(decision.ignored))
            log.info("github %s %s ignored: %s", event.event, event.delivery_id, reason)
            metrics.WEBHOOKS.labels("github", event.event, "ignored").inc()
            return web.json_response({"status": "ignored", "reason": reason})
        queued: list[int] = []
        skipped: list[str | None] = []
        outcomes = await admit_and_queue(
            self, self.sink, decision.jobs,
            lambda index: f"github:{event.delivery_id}" + (f":{index}" if index else ""),
        )  # fmt: skip
        for outcome in outcomes:
            result = outcome.enqueued
            if result is None:
                log.info(
                    "github %s %s: /%s refused: %s",
                    event.event,
                    event.delivery_id,
                    outcome.job.kind,
                    outcome.refused,
                )
                skipped.append(f"refused: {outcome.refused}")
            elif result.skipped == DUPLICATE_DELIVERY:
                metrics.WEBHOOKS.labels("github", event.event, "duplicate").inc()
                return web.json_response({"status": "duplicate", "delivery": event.delivery_id})
            elif result.job_id is None:
                log.info(
                    "github %s %s: %s: %s", event.event, event.delivery_id, outcome.job.key, result.skipped
                )
                skipped.append(result.skipped)
            else:
                queued.append(result.job_id)
        if not queued:
            metrics.WEBHOOKS.labels("github", event.event, "ignored").inc()
            return web.json_response({"status": "ignored", "reason": "; ".join(map(str, skipped))})
        metrics.WEBHOOKS.labels("github", event.event, "queued").inc()
        return web.json_response({"status": "queued", "jobs": queued}, status=202)

    # -- Platform ------------------------------------------------------------------------
    async def prepare(self, job: Job) -> GitHubTarget:
        payload = GitHubJob.of(job.payload)
        repo, number = payload.repo, int(payload.number)
        if skip_listed(repo, self.settings.skip_repositories):
            raise Skip(f"{repo} is in github.skip_repositories")
        gh = await self.api_for(payload.installation_id)
        try:
            pr = await gh.getitem(f"/repos/{repo}/pulls/{number}")
        except BadRequest as exc:
            _raise_for(exc, f"pull request {repo}#{number}")
        if pr["state"] != "open":
            raise Skip(f"{repo}#{number} is {pr['state']}")
        if pr.get("draft") and not self.settings.review_drafts and job.kind == "review":
            raise Skip(f"{repo}#{number} is a draft")
        head = pr["head"]["sha"]
        # The configuration comes from the base branch, never from the pull request itself.
        config_text, source = await self._repo_config(gh, repo, pr["base"]["ref"])
        return GitHubTarget(
            key=f"github:{repo}#{number}@{head[:7]}",
            config_text=config_text,
            config_source=source,
            gh=gh,
            repo=repo,
            number=number,
            pr=pr,
            head=head,
            requested=job.kind == "rescan",
            comment_id=payload.comment_id,
        )

    async def _react(self, gh: PacedGitHubAPI, repo: str, comment_id: int) -> None:
        try:
            await gh.post(f"/repos/{repo}/issues/comments/{comment_id}/reactions", data={"content": "eyes"})
        except BadRequest as exc:
            log.warning("could not react to comment %s on %s: %s", comment_id, repo, exc)

    async def begin(self, target: GitHubTarget) -> str | None:
        """Acknowledge a /rescan (only now: an opted-out repository sees nothing) and open the
        check run, or reopen the one an interrupted attempt of this job left (``target.resume``)."""
        if target.comment_id and target.resume is None:
            await self._react(target.gh, target.repo, target.comment_id)
        run_id = await self._reopen_check_run(target.gh, target.repo, target.resume)
        if run_id is None:
            run_id = await self._start_check_run(target.gh, target.repo, target.head, target)
        target.check_run_id = run_id
        return str(run_id) if run_id is not None else None

    async def _reopen_check_run(self, gh: PacedGitHubAPI, repo: str, resume: str | None) -> int | None:
        if resume is None or not resume.isdigit():
            return None
        try:
            await gh.patch(f"/repos/{repo}/check-runs/{resume}", data={"status": "in_progress"})
        except BadRequest as exc:
            log.warning("could not reopen check run %s on %s: %s", resume, repo, exc)
            return None
        return int(resume)

    async def report_failure(self, target: GitHubTarget, reason: str) -> None:
        """The check run already says ``neutral`` (``abandon``); the conversation says it too, once."""
        gh = target.gh
        marker = RUN_MARKER.format(target.job_id)
        me = await self.bot_login(gh)
        url = f"/repos/{target.repo}/issues/{target.number}/comments"
        async for c in gh.getiter(f"{url}?per_page=100"):
            if c.get("user", {}).get("login") == me and marker in (c.get("body") or ""):
                return
        body = (
            f"Patchwarden could not review {target.head[:7]}: {reason}\n\n"
            f"No finding was checked. Comment `/rescan` to try again.\n\n{marker}"
        )
        await gh.post(url, data={"body": body})

    async def refusal(self, request: JobRequest) -> str | None:
        """Our own account never commands us (a token's user can write comments too); the
        author-association trust rule for ``/rescan`` ran in the event decision; ``/ignore`` needs
        write permission on the repository (maintain or admin with ``--everywhere``), asked of
        GitHub; then the rate limits."""
        payload = GitHubJob.of(request.payload)
        user = payload.requested_by or ""
        gh = await self.api_for(payload.installation_id)
        if user and user == await self.bot_login(gh):
            return "a comment by the bot's own account"
        if request.kind != "ignore":
            return await self.limits.admit(request.key, user)
        if payload.error:
            return payload.error
        permission = await gh.getitem(
            f"/repos/{payload.repo}/collaborators/{quote(user, safe='')}/permission"
        )  # repos/get-collaborator-permission-level
        role, base = permission.get("role_name"), permission.get("permission")
        if payload.everywhere and not (role in ("admin", "maintain") or base == "admin"):
            return f"only maintainers (maintain or admin permission on {payload.repo}) may ignore a finding everywhere"
        if not payload.everywhere and base not in ("admin", "write"):
            return f"only users with write permission on {payload.repo} may ignore a finding"
        return await self.ignore_limits.admit(request.key, user)

    async def answer_refusal(self, request: JobRequest, reason: str) -> None:
        payload = GitHubJob.of(request.payload)
        user = payload.requested_by or ""
        if reason == "a comment by the bot's own account":
            return
        if request.kind == "ignore":  # each refused /ignore is answered, once (never silence)
            if not await self.triage.claim_command(f"github:{payload.repo}:{payload.comment_id}"):
                return
        elif not await self.limits.answer_now(request.key, user):
            return
        gh = await self.api_for(payload.installation_id)
        repo, number = payload.repo, payload.number
        if request.kind == "ignore":
            metrics.TRIAGE.labels("github", "refused").inc()
            body = {"body": f"@{user} `/ignore` was not carried out: {reason}. The finding stays open."}
            if payload.reply_to is None:  # written in the conversation: answered there
                await gh.post(f"/repos/{repo}/issues/{number}/comments", data=body)
            else:
                await gh.post(f"/repos/{repo}/pulls/{number}/comments/{payload.reply_to}/replies", data=body)
            return
        await gh.post(
            f"/repos/{repo}/issues/{number}/comments",
            data={"body": f"@{user} `/rescan` was not run: {reason}."},
        )

    async def run_command(self, request: JobRequest) -> str:
        """``/ignore``, admitted: the thread must be one of the bot's findings; the decision is
        stored (with its audit record), confirmed on the thread, and the thread resolved."""
        payload = GitHubJob.of(request.payload)
        user, repo, number = payload.requested_by or "", payload.repo, payload.number
        try:
            gh = await self.api_for(payload.installation_id)
            if not await self.triage.claim_command(f"github:{repo}:{payload.comment_id}"):
                return "/ignore already handled"
            me = await self.bot_login(gh)
            root = None
            async for c in gh.getiter(f"/repos/{repo}/pulls/{number}/comments?per_page=100"):
                if c.get("id") == payload.reply_to:
                    root = c
                    break
            found = _FINGERPRINT.search((root or {}).get("body") or "")
            if root is None or root.get("user", {}).get("login") != me or found is None:
                body = f"@{user} `/ignore` works on Patchwarden's own findings only: reply on one of its comments."
                await gh.post(
                    f"/repos/{repo}/pulls/{number}/comments/{payload.reply_to}/replies", data={"body": body}
                )
                metrics.TRIAGE.labels("github", "refused").inc()
                return "/ignore not on a finding of the bot"
            command = IgnoreCommand(payload.everywhere, payload.reason or "")
            title = m.group(1) if (m := _TITLE.search(root.get("body") or "")) else ""
            decision = Ignore(
                "github",
                command.scope,
                f"github:{repo}" if command.everywhere else request.key,
                found.group(1),
                user,
                command.reason,
                title=title,
                comment_id=str(payload.comment_id),
            )
            await self.triage.add(decision)
            reply = confirmation(command, f"@{user}", title, "this pull request")
            await gh.post(
                f"/repos/{repo}/pulls/{number}/comments/{payload.reply_to}/replies", data={"body": reply}
            )
            await github_threads.follow(
                gh, self.graphql_url, repo, number, resolve=[int(payload.reply_to or 0)]
            )
        except (
            Exception
        ) as exc:  # the webhook still answers; the requester sees the decision or nothing changed
            log.warning("/ignore by %s on %s failed: %r", user, request.key, exc)
            metrics.TRIAGE.labels("github", "failed").inc()
            return f"/ignore failed: {exc}"
        metrics.TRIAGE.labels("github", "ignored").inc()
        return f"/ignore by {user} recorded ({decision.scope})"

    async def abandon(self, target: GitHubTarget, reason: str, cancelled: bool) -> None:
        if target.check_run_id is not None:
            await _close_check_run(target.gh, target.repo, target.check_run_id, reason, cancelled)

    async def close_begun(self, job: Job, token: str, reason: str) -> None:
        """The check run an interrupted attempt opened, on a job that will not run again."""
        if not token.isdigit():
            return
        payload = GitHubJob.of(job.payload)
        gh = await self.api_for(payload.installation_id)
        await _close_check_run(gh, payload.repo, int(token), reason, cancelled=True)

    async def _start_check_run(
        self, gh: PacedGitHubAPI, repo: str, head: str, target: GitHubTarget
    ) -> int | None:
        """One run per job, found again by its ``external_id`` when an earlier try of this job may
        have created it (a lost answer, a kill before the id was kept), so none is left open.
        Until GitHub has answered one creation, creations wait for each other: concurrent workers
        would otherwise each ask a credential that cannot create check runs."""
        if self._check_runs_answered:
            return await self._create_check_run(gh, repo, head, target)
        async with self._check_run_probe:
            run_id = await self._create_check_run(gh, repo, head, target)
            self._check_runs_answered = run_id is not None or self._no_check_runs
            return run_id

    async def _create_check_run(
        self, gh: PacedGitHubAPI, repo: str, head: str, target: GitHubTarget
    ) -> int | None:
        if self._no_check_runs:
            return None
        external_id = f"patchwarden-job-{target.job_id}"
        async for attempt in policy(4, 0.5, retry_on=TransientError):
            with attempt:
                try:
                    if target.attempt > 1 or attempt.retry_state.attempt_number > 1:
                        found = await self._find_check_run(gh, repo, head, external_id)
                        if found is not None:
                            return found
                    run = await gh.post(
                        f"/repos/{repo}/check-runs",
                        data={"name": self.settings.check_run_name, "head_sha": head, "status": "in_progress",
                              "external_id": external_id},
                    )  # fmt: skip
                    return int(run["id"])
                except (GitHubBroken, aiohttp.ClientError, TimeoutError) as exc:
                    raise TransientError(f"GitHub: {exc!r} creating the check run on {repo}") from exc
                except BadRequest as exc:  # the review still goes out without a check run
                    if int(exc.status_code) == 403 and "GitHub App" in str(exc):
                        log.warning("this credential cannot create check runs (%s): not trying again", exc)
                        self._no_check_runs = True
                    else:
                        log.warning("could not create check run on %s: %s", repo, exc)
                    return None
        return None  # pragma: no cover

    async def _find_check_run(self, gh: PacedGitHubAPI, repo: str, head: str, external_id: str) -> int | None:
        """checks/list-for-ref, every run of our name on the head, matched by ``external_id``."""
        url = f"/repos/{repo}/commits/{head}/check-runs?check_name={quote(self.settings.check_run_name)}"
        async for run in gh.getiter(f"{url}&filter=all&per_page=100", iterable_key="check_runs"):
            if run.get("external_id") == external_id:
                return int(run["id"])
        return None

    async def _repo_config(self, gh: PacedGitHubAPI, repo: str, ref: str) -> tuple[str | None, str]:
        for path in REPO_CONFIG_PATHS:
            try:
                blob = await self._fetch(gh, repo, path, ref, follow_symlinks=True)
            except NotReviewable:
                continue
            return blob.decode("utf-8", errors="replace"), f"{path} on {ref}"
        return None, ".patchwarden.yaml"

    async def _fetch(
        self, gh: PacedGitHubAPI, repo: str, path: str, ref: str, *, follow_symlinks: bool = False
    ) -> bytes:
        """A regular file's bytes at ``ref``, through gidgethub's retrying client.

        Raises :class:`NotReviewable` (with the reason) for what is not a regular file there:
        missing (404), a directory, a symlink, a submodule, over ``engine.max_file_bytes``, or a
        name that cannot be a safe request path. Files over GitHub's 1 MB contents limit come
        back as ``encoding: "none"`` and are read from the git blobs API (up to 100 MB).
        """
        what = f"{repo}:{path}@{ref}"
        item = await self._get(gh, contents_url(repo, path, ref), what)
        if item is None:
            raise NotReviewable(f"not found at {ref[:12]}")
        if isinstance(item, list):
            raise NotReviewable(f"a directory at {ref[:12]}")
        kind = item.get("type")
        if kind == "symlink":
            raise NotReviewable(f"a symlink to {item.get('target')!r}")
        if kind == "submodule":
            raise NotReviewable(
                f"a submodule ({item.get('submodule_git_url')} at {str(item.get('sha'))[:7]})"
            )
        if kind != "file":
            raise NotReviewable(f"GitHub describes it as {kind!r}, not a file")
        if item.get("path") != path and not follow_symlinks:
            # A symlink to a regular file: GitHub answers with the target file's content.
            raise NotReviewable(f"a symlink to {item.get('path')!r}")
        size = int(item.get("size") or 0)
        if size > self.max_file_bytes:
            raise NotReviewable(over_limit(size, self.max_file_bytes))
        if item.get("encoding") == "base64":
            return base64.b64decode(item.get("content") or "")
        sha = str(item.get("sha") or "")
        if item.get("encoding") != "none" or not _SHA.fullmatch(sha):
            raise NotReviewable(f"GitHub sent its content as {item.get('encoding')!r}")
        blob = await self._get(gh, f"/repos/{repo}/git/blobs/{sha}", what)
        if not isinstance(blob, dict) or blob.get("encoding") != "base64":
            raise NotReviewable(f"GitHub sent no content for blob {sha[:7]}")
        return base64.b64decode(blob.get("content") or "")

    async def _get(self, gh: PacedGitHubAPI, url: str, what: str) -> Any:
        """GET through the retrying client; ``None`` for 404; NotReviewable for GitHub's size refusal."""
        try:
            return await gh.getitem(url)
        except BadRequest as exc:
            status = int(exc.status_code)
            if status == 404:
                return None
            if status == 403 and "too large" in str(exc).lower():
                raise NotReviewable(f"too large for GitHub's API: {exc}") from exc
            _raise_for(exc, what)
        except (GitHubBroken, aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"fetching {what}: {exc!r}") from exc

    async def load_change(self, target: GitHubTarget, config: RepoConfig, wants: Wants) -> Change:
        gh, repo, number, pr, head = target.gh, target.repo, target.number, target.pr, target.head
        listing = [e async for e in gh.getiter(f"/repos/{repo}/pulls/{number}/files?per_page=100")]
        errors: list[str] = []
        changed = int(pr.get("changed_files") or 0)
        if changed > len(listing):  # GitHub lists at most 3,000 files of a pull request
            errors.append(
                f"GitHub lists only {len(listing)} of the {changed} changed files; the others were not reviewed"
            )
        entries = [
            FileEntry(
                e["filename"],
                _STATUS.get(e.get("status", "modified"), FileStatus.MODIFIED),
                e.get("previous_filename"),
                patch=e.get("patch"),
            )
            for e in listing
        ]

        def placeholder(entry: FileEntry) -> ChangedFile:
            # Keep its lines (for placement) but nothing to analyze.
            if not entry.patch:
                return ChangedFile(entry.path, entry.status, None, entry.old_path)
            return parse_file_patch(entry.path, entry.patch).changed_file(None, entry.status, entry.old_path)

        async def fetch(entry: FileEntry) -> ChangedFile:
            path, status, old_path = entry.path, entry.status, entry.old_path
            content = await self._fetch(gh, repo, path, head)
            if b"\x00" in content[:8000]:
                return ChangedFile(path, FileStatus.BINARY, None, old_path)
            if entry.patch is not None:
                fd = parse_file_patch(path, entry.patch)
            else:  # GitHub omits the patch of large diffs: compare the two blobs ourselves
                base = None
                if status is not FileStatus.ADDED:
                    try:
                        base = await self._fetch(gh, repo, old_path or path, pr["base"]["sha"])
                    except NotReviewable as exc:
                        raise NotReviewable(f"no patch from GitHub and the base version: {exc}") from exc
                fd = diff_contents(path, base, content)
            return fd.changed_file(content, status, old_path)

        files, not_reviewed = await load_files(
            entries,
            lambda path: config.wants_path(path) and wants(path),
            fetch,
            placeholder,
            self.max_file_bytes,
        )
        return Change(files=files, base=pr["base"]["sha"], head=head, errors=errors + not_reviewed)

    async def publish(self, target: GitHubTarget, change: Change, review: Review, config: RepoConfig) -> None:
        """Exactly once per job: every try (the first too: a killed process may have posted before
        it could mark the job done) first looks for this job's run marker among the bot's reviews;
        a write whose answer was lost (5xx, reset) is retried only when the marker is not there.
        Inline comments and "fixed" replies are matched by fingerprint, so a retry adds none twice."""
        async for attempt in policy(4, 1.0, retry_on=TransientError):
            with attempt:
                try:
                    await self._publish_once(target, review, config)
                except (GitHubBroken, aiohttp.ClientError, TimeoutError) as exc:
                    raise TransientError(f"GitHub: {exc!r} while publishing {target.key}") from exc

    async def _threads(self, gh: PacedGitHubAPI, repo: str, number: int, me: str) -> list[Thread]:
        """The bot's review comments on the pull request, as threads (review comments API)."""
        ours = [
            c
            async for c in gh.getiter(f"/repos/{repo}/pulls/{number}/comments?per_page=100")
            if c.get("user", {}).get("login") == me
        ]
        state: dict[str, str] = {}  # the bot's last word on each finding's thread
        for c in sorted(ours, key=lambda c: c["id"]):
            for m in _THREAD_STATE.finditer(c.get("body") or ""):
                state[m.group(2)] = m.group(1)
        fixed = {fingerprint for fingerprint, word in state.items() if word == "fixed"}
        return [
            Thread(m.group(1), c["id"], c.get("path", ""), int(c.get("line") or 1), fixed=m.group(1) in fixed)
            for c in ours
            if (m := _FINGERPRINT.search(c.get("body") or ""))
        ]

    async def _publish_once(self, target: GitHubTarget, review: Review, config: RepoConfig) -> None:
        gh, repo, number, head = target.gh, target.repo, target.number, target.head
        me = await self.bot_login(gh)
        run_marker = RUN_MARKER.format(target.job_id)
        our_reviews = [
            r
            async for r in gh.getiter(f"/repos/{repo}/pulls/{number}/reviews?per_page=100")
            if r.get("user", {}).get("login") == me
        ]
        triaged = await self._triaged(target, review, config)
        review = triaged.review
        decided = plan(review, await self._threads(gh, repo, number, me), ignored=triaged.fingerprints)
        if any(run_marker in (r.get("body") or "") for r in our_reviews):
            log.info("%s: the review of job %s is already on the pull request", target.key, target.job_id)
        elif self._nothing_new(target, review, our_reviews, decided, triaged):
            log.info("%s: no new finding and the same verdict: check run and replies only", target.key)
        else:
            failed = await self._post_review(gh, repo, number, head, review, decided, run_marker)
            metrics.COMMENTS.labels("github").inc(len(decided.new) - len(failed))

        for thread in decided.fixed:
            body = f"Fixed in {head[:7]}: Patchwarden no longer finds this on the latest push.\n\n{FIXED_MARKER.format(thread.fingerprint)}"
            try:
                await gh.post(
                    f"/repos/{repo}/pulls/{number}/comments/{thread.id}/replies", data={"body": body}
                )
            except BadRequest as exc:
                log.warning("could not reply on comment %s: %s", thread.id, exc)
        for thread in decided.reopened:
            body = (
                f"Back in {head[:7]}: Patchwarden finds this again on the latest push, so the thread "
                f"is open again.\n\n{REOPENED_MARKER.format(thread.fingerprint)}"
            )
            try:
                await gh.post(
                    f"/repos/{repo}/pulls/{number}/comments/{thread.id}/replies", data={"body": body}
                )
            except BadRequest as exc:
                log.warning("could not reply on comment %s: %s", thread.id, exc)
        await github_threads.follow(
            gh, self.graphql_url, repo, number,
            resolve=[t.id for t in decided.fixed], unresolve=[t.id for t in decided.reopened],
        )  # fmt: skip
        await self._finish_check_run(gh, repo, target.check_run_id, review, config)

    async def _triaged(self, target: GitHubTarget, review: Review, config: RepoConfig) -> Triaged:
        """The review without what triage ignored on this pull request or repository."""
        decisions = await self.triage.decisions(
            f"github:{target.repo}#{target.number}", f"github:{target.repo}"
        )
        return apply_triage(review, decisions, config.max_inline_comments)

    @staticmethod
    def _nothing_new(
        target: GitHubTarget,
        review: Review,
        our_reviews: list[dict[str, Any]],
        decided: Plan,
        triaged: Triaged | None = None,
    ) -> bool:
        """A push that adds no comment and leaves the verdict as our last summary stated it gets no
        new review (the check run and the "fixed" replies still say what changed): a pull request
        under iteration should not collect one identical summary per push. Requests always answer,
        and so does a push after a new triage decision (the summary lists who ignored what)."""
        if not decided.nothing_new or target.requested:
            return False
        last = None
        for r in our_reviews:
            if SUMMARY_MARKER in (r.get("body") or ""):
                last = r["body"]
        if triaged is not None and triaged.ignored and (last is None or triaged.section not in last):
            return False
        return last is not None and last.splitlines()[0] == review.summary.splitlines()[0]

    async def _post_review(
        self,
        gh: PacedGitHubAPI,
        repo: str,
        number: int,
        head: str,
        review: Review,
        decided: Plan,
        run_marker: str,
    ) -> list[Comment]:
        """One review; if GitHub rejects a comment (422), bisect so the others still land."""
        url = f"/repos/{repo}/pulls/{number}/reviews"

        def summary(refused: list[Comment]) -> str:
            footer = SUMMARY_MARKER + run_marker
            return summary_message(
                review, decided, refused, platform="GitHub", revision_word="push", footer=footer
            )

        async def post(batch: Sequence[Comment], body: str | None = None) -> None:
            data: dict[str, Any] = {
                "commit_id": head,
                "event": "COMMENT",
                "body": body if body is not None else PARTIAL_REVIEW_BODY,
                "comments": [_inline(c) for c in batch],
            }
            try:
                await gh.post(url, data=data)
            except BadRequest as exc:
                if int(exc.status_code) == 422:
                    log.warning("GitHub refused a review batch of %d comment(s): %s", len(batch), exc)
                    raise Rejected(str(exc)) from exc
                _raise_for(exc, f"review on {repo}#{number}")

        try:
            await post(decided.new, summary([]))
            return []
        except Rejected:
            pass
        # Post what GitHub accepts without a summary, then one summary that names the refused ones.
        failed = await post_in_batches(decided.new, post)
        await post([], summary(failed))
        return failed

    async def _finish_check_run(
        self, gh: PacedGitHubAPI, repo: str, run_id: int | None, review: Review, config: RepoConfig
    ) -> None:
        if run_id is None:
            return
        worst = review.worst_severity()
        if not review.all_comments and not review.errors:
            conclusion = "success"
        elif config.fail_level and worst and worst.rank >= config.fail_level.rank:
            conclusion = "failure"
        else:
            conclusion = "neutral"
        title = review.summary.splitlines()[0]
        await gh.patch(
            f"/repos/{repo}/check-runs/{run_id}",
            data={
                "status": "completed",
                "conclusion": conclusion,
                "output": {"title": title[:250], "summary": _clip(review.summary, CHECK_SUMMARY_MAX)},
            },
        )


def contents_url(repo: str, path: str, ref: str) -> str:
    """``/repos/{repo}/contents/{path}?ref=`` with every path segment percent-encoded.

    A file name is data, never URL syntax: ``?``, ``#``, ``%`` and spaces are encoded, and a
    name with an empty, ``.`` or ``..`` segment (which URL joining would resolve into a request
    outside ``contents/``) is refused rather than normalised.
    """
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise NotReviewable(f"unsafe file name {path!r}: not fetched")
    encoded = "/".join(quote(segment, safe="") for segment in segments)
    return f"/repos/{repo}/contents/{encoded}?ref={quote(ref, safe='')}"


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` characters and ``limit`` UTF-8 bytes (never a broken character)."""
    return text[:limit].encode()[:limit].decode("utf-8", errors="ignore")


def _inline(c: Comment) -> dict[str, Any]:
    # A fix goes as a suggested change, which replaces the lines the comment covers: the fix's
    # lines (they include the comment's own, see bot.fixes.offer).
    first, last = (c.fix.start_line, c.fix.end_line) if c.fix else (c.line, c.end_line)
    suggestion = f"\n\n{suggestion_block(c.fix)}" if c.fix else ""
    body = f"{c.body}{suggestion}\n\n{MARKER.format(c.fingerprint)}"
    data: dict[str, Any] = {"path": c.path, "line": last, "side": "RIGHT", "body": body}
    if last > first:  # a multi-line comment: GitHub wants the range as start_line..line
        data.update(start_line=first, start_side="RIGHT")
    return data


def _raise_for(exc: BadRequest, what: str) -> None:
    """A refusal as the worker's error: rate limits are worth a later try, the rest is not."""
    status = int(exc.status_code)
    headers = getattr(exc, "headers", None) or {}
    if status == 429 or (
        status == 403
        and (header(headers, "x-ratelimit-remaining") == "0" or "rate limit" in str(exc).lower())
    ):
        raise TransientError(f"GitHub {status} (rate limited) for {what}: {exc}") from exc
    if status == 401:
        raise PermanentError(
            f"GitHub 401 for {what}: check PATCHWARDEN_GITHUB_TOKEN or the App id / private key"
        ) from exc
    if status in (403, 404):
        raise PermanentError(
            f"GitHub {status} for {what}: not visible to the bot (installation, permissions)"
        ) from exc
    raise PermanentError(f"GitHub {status} for {what}: {exc}") from exc


SPEC = PlatformSpec(
    "github", github_enabled, check_github_settings, GitHubPlatform.from_settings, ("/webhooks/github",)
)


async def _close_check_run(gh: PacedGitHubAPI, repo: str, run_id: int, reason: str, cancelled: bool) -> None:
    title = "Review cancelled" if cancelled else "The review could not be completed"
    await gh.patch(
        f"/repos/{repo}/check-runs/{run_id}",
        data={
            "status": "completed",
            "conclusion": "cancelled" if cancelled else "neutral",
            "output": {"title": title, "summary": _clip(reason, CHECK_SUMMARY_MAX)},
        },
    )

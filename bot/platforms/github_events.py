"""GitHub events, sans I/O: verify, parse and turn a webhook into a queued job (or nothing).

Probot-style: each handler is registered on an event name (and actions) with gidgethub's Router,
so a new event is one decorated function. Handlers only decide; they never call GitHub. The
work (fetching, reviewing, posting, reacting) happens in the queued job.

Intake never trusts a byte it has not verified: the signature (``sha256=`` + 64 hex digits,
HMAC-SHA256 over the exact raw body, compared in constant time) is checked before anything is
decoded, and every delivery is validated against a model of exactly the fields the handlers
read (an envelope for every event, one model per handled event) before a handler runs. A body
that does not fit is a :class:`WebhookError` with a 4xx status and a one-line reason.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any
from urllib.parse import parse_qs

import pydantic_core
from gidgethub.routing import Router
from gidgethub.sansio import Event
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from bot.config import GitHubSettings
from bot.platforms.base import Decision, JobRequest, WebhookError, one_line
from bot.triage import IGNORE_LINE, IGNORE_WHERE, CommandError, parse_ignore

log = logging.getLogger(__name__)

RESCAN = re.compile(r"^\s*/rescan\s*$", re.MULTILINE)
TRUSTED_ASSOCIATIONS = {"OWNER", "MEMBER", "COLLABORATOR"}
SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")
EVENT_NAME = re.compile(r"[a-z0-9_]{1,64}")
DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,200}")  # GitHub sends a GUID; printable ASCII, bounded
_MODEL_NAME = re.compile(r" or instance of \w+")  # pydantic names our classes: not for answers


def first_error(exc: ValidationError) -> str:
    """The first validation error as ``where: what`` (never the offending value)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {_MODEL_NAME.sub('', first['msg'])}"


def parse_json(raw: bytes | str) -> Any:
    """JSON through pydantic-core's parser: nesting is bounded (no RecursionError), invalid UTF-8,
    lone surrogates and NaN/Infinity are refused. ValueError with a one-line reason otherwise."""
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False)
    except (ValueError, TypeError) as exc:  # TypeError: a str with lone surrogates
        raise ValueError(one_line(str(exc))) from None


# -- exactly the fields the handlers read (extra fields allowed; old payloads lack many) ------
class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


Id = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
Number = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
Sha = Annotated[StrictStr, Field(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
RepoName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=1000)]


class GitHubEvent(_Loose):
    """What is read of every delivery, handled or not."""

    action: StrictStr | None = None


class _Repo(_Loose):
    full_name: RepoName


class _User(_Loose):
    login: Name
    type: StrictStr = "User"


class _Ref(_Loose):
    sha: Sha
    ref: StrictStr


class _PullRequest(_Loose):
    number: Number
    state: StrictStr = "open"
    draft: StrictBool = False
    head: _Ref
    base: _Ref
    user: _User


class _Installation(_Loose):
    id: Id


class PullRequestEvent(GitHubEvent):
    action: StrictStr
    pull_request: _PullRequest
    repository: _Repo
    installation: _Installation | None = None


class _IssuePR(_Loose):
    url: StrictStr | None = None


class _Issue(_Loose):
    number: Number
    user: _User
    state: StrictStr = "open"
    pull_request: _IssuePR | None = None


class _Comment(_Loose):
    id: Id
    body: StrictStr = ""
    user: _User
    author_association: StrictStr = "NONE"


class IssueCommentEvent(GitHubEvent):
    action: StrictStr
    issue: _Issue
    comment: _Comment
    repository: _Repo
    installation: _Installation | None = None


class _ReviewComment(_Comment):
    in_reply_to_id: Id | None = None


class _ReviewCommentPR(_Loose):
    number: Number
    user: _User
    state: StrictStr = "open"


class ReviewCommentEvent(GitHubEvent):
    action: StrictStr
    comment: _ReviewComment
    pull_request: _ReviewCommentPR
    repository: _Repo
    installation: _Installation | None = None


class _CheckRunPR(_Loose):
    number: Number


class _App(_Loose):
    id: Id | None = None


class _CheckRun(_Loose):
    name: StrictStr
    head_sha: Sha
    pull_requests: list[_CheckRunPR] = []
    app: _App | None = None


class CheckRunEvent(GitHubEvent):
    action: StrictStr
    check_run: _CheckRun
    repository: _Repo
    installation: _Installation | None = None


class _Account(_Loose):
    login: StrictStr | None = None


class _InstallationAccount(_Loose):
    account: _Account | None = None


class HousekeepingEvent(GitHubEvent):
    installation: _InstallationAccount | None = None
    zen: StrictStr | None = None


EVENT_SHAPES: dict[str, type[GitHubEvent]] = {
    "pull_request": PullRequestEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review_comment": ReviewCommentEvent,
    "check_run": CheckRunEvent,
    "ping": HousekeepingEvent,
    "installation": HousekeepingEvent,
    "installation_repositories": HousekeepingEvent,
}


# -- verification and decoding ---------------------------------------------------------------
def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        out.setdefault(k.lower(), v)
    return out


def signature_header(headers: Mapping[str, str]) -> str:
    """The ``X-Hub-Signature-256`` value if it has the only accepted form, ``sha256=<64 hex>``.

    Checked before the body is read. The SHA-1 ``X-Hub-Signature`` is never looked at, and a
    ``sha1=`` value in the SHA-256 header is refused like any other malformed value."""
    signature = _lower(headers).get("x-hub-signature-256")
    if signature is None:
        raise WebhookError(401, "missing X-Hub-Signature-256")
    if not SIGNATURE.fullmatch(signature):
        raise WebhookError(401, "X-Hub-Signature-256 must be sha256= followed by 64 hex digits")
    return signature


def verify_signature(signature: str, body: bytes, secret: str) -> None:
    """HMAC-SHA256 of the exact raw body, compared in constant time."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = signature.removeprefix("sha256=").lower()
    if not hmac.compare_digest(given.encode("ascii"), expected.encode("ascii")):
        raise WebhookError(401, "X-Hub-Signature-256 does not match the body (wrong secret or altered body)")


def decode_webhook(headers: Mapping[str, str], body: bytes) -> Event:
    """A verified body → gidgethub Event with a JSON object as its data; WebhookError otherwise."""
    lower = _lower(headers)
    name, delivery = lower.get("x-github-event"), lower.get("x-github-delivery")
    if name is None or delivery is None:
        raise WebhookError(400, "missing X-GitHub-Event or X-GitHub-Delivery")
    if not EVENT_NAME.fullmatch(name):
        raise WebhookError(400, "X-GitHub-Event is not an event name")
    if not DELIVERY_ID.fullmatch(delivery):
        raise WebhookError(400, "X-GitHub-Delivery must be 1-200 printable ASCII characters")
    content_type = lower.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json":
        raw: bytes | str = body
    elif content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), errors="strict", max_num_fields=100)
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookError(400, f"form body is not readable: {exc}") from None
        if len(form.get("payload", [])) != 1:
            raise WebhookError(400, "form body must have exactly one payload field")
        raw = form["payload"][0]
    else:
        raise WebhookError(415, "Content-Type must be application/json or application/x-www-form-urlencoded")
    try:
        data = parse_json(raw)
    except ValueError as exc:
        raise WebhookError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookError(400, "body is not a JSON object")
    return Event(data, event=name, delivery_id=delivery)


def parse_webhook(headers: Mapping[str, str], body: bytes, secret: str) -> Event:
    """Verify the signature over the raw body (constant time) and decode it; WebhookError otherwise."""
    verify_signature(signature_header(headers), body, secret)
    return decode_webhook(headers, body)


def validate(event: Event) -> GitHubEvent:
    """The event's model (the envelope for events without handlers); WebhookError(400) otherwise."""
    model = EVENT_SHAPES.get(event.event, GitHubEvent)
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise WebhookError(400, f"not a valid {event.event} event: {first_error(exc)}") from None


# -- handlers: each gets the validated model --------------------------------------------------
def _key(repo: str, number: int) -> str:
    return f"github:{repo}#{number}"


@dataclass(frozen=True)
class GitHubJob:
    """A GitHub job's payload: written by the handlers below, read by bot.platforms.github."""

    repo: str
    number: int
    installation_id: int | None = None
    revision: str | None = None  # the head the event names (None: the current one)
    trigger: str = ""
    comment_id: int | None = None  # the /rescan comment, to acknowledge; the /ignore reply
    requested_by: str | None = None
    reply_to: int | None = None  # /ignore: the review comment (thread) it answers
    reason: str | None = None  # /ignore: why
    everywhere: bool = False  # /ignore --everywhere: for the whole repository
    error: str | None = None  # /ignore written so that it cannot be carried out: answered with this

    def request(self, kind: str, once_per_revision: bool = False) -> JobRequest:
        return JobRequest(kind, _key(self.repo, self.number), asdict(self), once_per_revision)

    @classmethod
    def of(cls, payload: dict[str, Any]) -> GitHubJob:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


def _installation_id(installation: _Installation | None) -> int | None:
    return installation.id if installation else None


router = Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def on_pull_request(
    event: Event, settings: GitHubSettings, decision: Decision, ev: PullRequestEvent
) -> None:
    pr = ev.pull_request
    if pr.draft and not settings.review_drafts:
        decision.ignored = "draft pull request"
        return
    job = GitHubJob(
        ev.repository.full_name,
        pr.number,
        _installation_id(ev.installation),
        revision=pr.head.sha,
        trigger=f"pull_request.{ev.action}",
    )
    decision.jobs.append(job.request("review", once_per_revision=True))


@router.register("issue_comment", action="created")
async def on_comment(
    event: Event, settings: GitHubSettings, decision: Decision, ev: IssueCommentEvent
) -> None:
    author = ev.comment.user
    if author.type == "Bot" or author.login.endswith("[bot]") or author.login == settings.bot_login:
        decision.ignored = f"comment by bot account {author.login}"
        return
    if ev.issue.pull_request is None:
        decision.ignored = "comment on an issue, not a pull request"
        return
    if not RESCAN.search(ev.comment.body):
        if IGNORE_LINE.search(ev.comment.body):  # answered with where /ignore goes, never ignored
            job = GitHubJob(ev.repository.full_name, ev.issue.number, _installation_id(ev.installation),
                            trigger="ignore", comment_id=ev.comment.id, requested_by=author.login,
                            error=IGNORE_WHERE)  # fmt: skip
            decision.jobs.append(job.request("ignore"))
            return
        decision.ignored = "no /rescan command"
        return
    trusted = ev.comment.author_association in TRUSTED_ASSOCIATIONS or author.login == ev.issue.user.login
    if not trusted:
        decision.ignored = f"/rescan by {author.login} ({ev.comment.author_association}) is not trusted"
        return
    job = GitHubJob(
        ev.repository.full_name,
        ev.issue.number,
        _installation_id(ev.installation),
        trigger="rescan",
        comment_id=ev.comment.id,
        requested_by=author.login,
    )
    decision.jobs.append(job.request("rescan"))


@router.register("pull_request_review_comment", action="created")
async def on_review_comment(
    event: Event, settings: GitHubSettings, decision: Decision, ev: ReviewCommentEvent
) -> None:
    """``/ignore <reason>`` replied on a thread: who may is checked at admission (write
    permission, or maintain/admin for ``--everywhere``), the thread's root at the command."""
    author = ev.comment.user
    if author.type == "Bot" or author.login.endswith("[bot]") or author.login == settings.bot_login:
        decision.ignored = f"comment by bot account {author.login}"
        return
    try:
        command = parse_ignore(ev.comment.body)
        error = None
    except CommandError as exc:
        command, error = None, str(exc)
    if command is None and error is None:
        decision.ignored = "no /ignore command"
        return
    if ev.comment.in_reply_to_id is None:  # a new thread of its own: told where /ignore goes
        command, error = None, IGNORE_WHERE
    job = GitHubJob(
        ev.repository.full_name,
        ev.pull_request.number,
        _installation_id(ev.installation),
        trigger="ignore",
        comment_id=ev.comment.id,
        requested_by=author.login,
        reply_to=ev.comment.in_reply_to_id,
        reason=command.reason if command else None,
        everywhere=bool(command and command.everywhere),
        error=error,
    )
    decision.jobs.append(job.request("ignore"))


@router.register("check_run", action="rerequested")
async def on_check_rerun(
    event: Event, settings: GitHubSettings, decision: Decision, ev: CheckRunEvent
) -> None:
    run = ev.check_run
    if run.name != settings.check_run_name or (
        settings.app_id is not None and run.app is not None and run.app.id not in (None, settings.app_id)
    ):
        decision.ignored = f"check run {run.name!r} is not ours"
        return
    if not run.pull_requests:
        decision.ignored = "re-run of a check with no pull request"
        return
    for pr in run.pull_requests:
        job = GitHubJob(
            ev.repository.full_name,
            pr.number,
            _installation_id(ev.installation),
            revision=run.head_sha,
            trigger="check_run.rerequested",
        )
        decision.jobs.append(job.request("rescan"))


@router.register("ping")
@router.register("installation")
@router.register("installation_repositories")
async def on_housekeeping(
    event: Event, settings: GitHubSettings, decision: Decision, ev: HousekeepingEvent
) -> None:
    account = ev.installation.account if ev.installation else None
    target = (account.login if account else None) or ev.zen or ""
    log.info("github %s %s %s", event.event, ev.action or "", one_line(target, 100))
    decision.ignored = f"{event.event} noted"


async def decide(event: Event, settings: GitHubSettings) -> Decision:
    """Route ``event`` to its handlers. WebhookError(400) when the body is not the event it claims
    (checked whatever the action: a 400 beats a silent ignore)."""
    ev = validate(event)
    decision = Decision()
    await router.dispatch(event, settings, decision, ev)
    if not decision.jobs and decision.ignored is None:
        decision.ignored = f"{event.event}.{ev.action or ''} is not handled"
    return decision

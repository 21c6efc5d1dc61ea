"""GitHub events, sans I/O: verify, parse and turn a webhook into a queued job (or nothing).

Probot-style: each handler is registered on an event name (and actions) with gidgethub's Router,
so a new event is one decorated function. Handlers only decide; they never call GitHub. The
work (fetching, reviewing, posting, reacting) happens in the queued job.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gidgethub import BadRequest, ValidationFailure
from gidgethub.routing import Router
from gidgethub.sansio import Event
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.config import GitHubSettings
from bot.platforms.decision import Decision
from bot.server.queue import JobRequest

log = logging.getLogger(__name__)

RESCAN = re.compile(r"^\s*/rescan\s*$", re.MULTILINE)
TRUSTED_ASSOCIATIONS = {"OWNER", "MEMBER", "COLLABORATOR"}


class WebhookError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- minimal shapes of the events we act on (extra fields allowed; old payloads lack many) ----
class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Repo(_Loose):
    full_name: str


class _User(_Loose):
    login: str
    type: str = "User"


class _Ref(_Loose):
    sha: str
    ref: str


class _PullRequest(_Loose):
    number: int
    state: str = "open"
    draft: bool = False
    head: _Ref
    base: _Ref
    user: _User


class _Installation(_Loose):
    id: int


class PullRequestEvent(_Loose):
    action: str
    pull_request: _PullRequest
    repository: _Repo
    installation: _Installation | None = None


class _IssuePR(_Loose):
    url: str | None = None


class _Issue(_Loose):
    number: int
    user: _User
    state: str = "open"
    pull_request: _IssuePR | None = None


class _Comment(_Loose):
    id: int
    body: str = ""
    user: _User
    author_association: str = "NONE"


class IssueCommentEvent(_Loose):
    action: str
    issue: _Issue
    comment: _Comment
    repository: _Repo
    installation: _Installation | None = None


class _CheckRunPR(_Loose):
    number: int


class _App(_Loose):
    id: int | None = None


class _CheckRun(_Loose):
    name: str
    head_sha: str
    pull_requests: list[_CheckRunPR] = []
    app: _App | None = None


class CheckRunEvent(_Loose):
    action: str
    check_run: _CheckRun
    repository: _Repo
    installation: _Installation | None = None


def parse_webhook(headers: dict[str, str], body: bytes, secret: str) -> Event:
    """Verify the signature over the raw body (constant time) and decode it; WebhookError otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "x-hub-signature-256" not in lower:
        raise WebhookError(401, "missing X-Hub-Signature-256")
    if "x-github-event" not in lower or "x-github-delivery" not in lower:
        raise WebhookError(400, "missing X-GitHub-Event or X-GitHub-Delivery")
    lower.pop("x-hub-signature", None)  # never fall back to the SHA-1 signature
    try:
        event = Event.from_http(lower, body, secret=secret)
    except ValidationFailure as exc:
        raise WebhookError(401, f"bad signature: {exc}") from None
    except BadRequest as exc:
        raise WebhookError(400, str(exc) or "unsupported content type") from None
    except ValueError as exc:  # body is not JSON
        raise WebhookError(400, f"body is not JSON: {exc}") from None
    if not isinstance(event.data, dict):
        raise WebhookError(400, "body is not a JSON object")
    return event


def _key(repo: str, number: int) -> str:
    return f"github:{repo}#{number}"


def _base_payload(repo: str, number: int, installation: _Installation | None) -> dict[str, Any]:
    return {"repo": repo, "number": number, "installation_id": installation.id if installation else None}


router = Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def on_pull_request(event: Event, settings: GitHubSettings, decision: Decision) -> None:
    ev = PullRequestEvent.model_validate(event.data)
    pr = ev.pull_request
    if pr.draft and not settings.review_drafts:
        decision.ignored = "draft pull request"
        return
    payload = _base_payload(ev.repository.full_name, pr.number, ev.installation)
    payload.update(revision=pr.head.sha, trigger=f"pull_request.{ev.action}")
    decision.jobs.append(JobRequest("review", _key(ev.repository.full_name, pr.number), payload, True))


@router.register("issue_comment", action="created")
async def on_comment(event: Event, settings: GitHubSettings, decision: Decision) -> None:
    ev = IssueCommentEvent.model_validate(event.data)
    author = ev.comment.user
    if author.type == "Bot" or author.login.endswith("[bot]") or author.login == settings.bot_login:
        decision.ignored = f"comment by bot account {author.login}"
        return
    if ev.issue.pull_request is None:
        decision.ignored = "comment on an issue, not a pull request"
        return
    if not RESCAN.search(ev.comment.body):
        decision.ignored = "no /rescan command"
        return
    trusted = ev.comment.author_association in TRUSTED_ASSOCIATIONS or author.login == ev.issue.user.login
    if not trusted:
        decision.ignored = f"/rescan by {author.login} ({ev.comment.author_association}) is not trusted"
        return
    payload = _base_payload(ev.repository.full_name, ev.issue.number, ev.installation)
    payload.update(trigger="rescan", comment_id=ev.comment.id, requested_by=author.login)
    decision.jobs.append(JobRequest("rescan", _key(ev.repository.full_name, ev.issue.number), payload))


@router.register("check_run", action="rerequested")
async def on_check_rerun(event: Event, settings: GitHubSettings, decision: Decision) -> None:
    ev = CheckRunEvent.model_validate(event.data)
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
        payload = _base_payload(ev.repository.full_name, pr.number, ev.installation)
        payload.update(trigger="check_run.rerequested", revision=run.head_sha)
        decision.jobs.append(JobRequest("rescan", _key(ev.repository.full_name, pr.number), payload))


@router.register("ping")
@router.register("installation")
@router.register("installation_repositories")
async def on_housekeeping(event: Event, settings: GitHubSettings, decision: Decision) -> None:
    target = (event.data.get("installation") or {}).get("account", {}).get("login") or event.data.get(
        "zen", ""
    )
    log.info("github %s %s %s", event.event, event.data.get("action", ""), target)
    decision.ignored = f"{event.event} noted"


EVENT_SHAPES: dict[str, type[BaseModel]] = {
    "pull_request": PullRequestEvent,
    "issue_comment": IssueCommentEvent,
    "check_run": CheckRunEvent,
}


async def decide(event: Event, settings: GitHubSettings) -> Decision:
    """Route ``event`` to its handlers. WebhookError(400) when the body is not the event it claims."""
    decision = Decision()
    try:
        model = EVENT_SHAPES.get(event.event)
        if model is not None:  # check the shape whatever the action: 400 beats a silent ignore
            model.model_validate(event.data)
        await router.dispatch(event, settings, decision)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WebhookError(400, f"not a valid {event.event} event: {where}: {first['msg']}") from None
    if not decision.jobs and decision.ignored is None:
        decision.ignored = f"{event.event}.{event.data.get('action', '')} is not handled"
    return decision

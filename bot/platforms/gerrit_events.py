"""Gerrit events, sans I/O: which stream/webhook events become review jobs.

The same gidgethub Router as the GitHub side routes them (registration on the event type), so
adding an event is one decorated function. Handlers never call Gerrit.

Both sources (an SSH ``stream-events`` line, a webhooks-plugin delivery) go through
:func:`parse_event` and :func:`decide`, which validate the event against a model of exactly
the fields the bot reads (Documentation/cmd-stream-events.txt, json.txt): an envelope for every
event (``type``, ``eventCreatedOn``, ``change`` as an object), the change and patchset
attributes for the subscribed types. Anything else is an :class:`EventError` (a ValueError)
with a one-line reason: the webhook answers 400, the stream logs the line and skips it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any

import pydantic_core
from gidgethub.routing import Router
from gidgethub.sansio import Event
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from bot.config import GerritSettings
from bot.platforms.base import Decision, JobRequest, one_line
from bot.triage import IGNORE_LINE

RESCAN = re.compile(r"^\s*/rescan\s*$", re.MULTILINE)
#: Gerrit's line in the change message of a review with inline comments ("(2 comments)"): the
#: inline texts (a ``/ignore`` reply among them) are read through REST when the command runs.
INLINE_COMMENTS = re.compile(r"^\((\d+) (?:inline )?comments?\)$", re.MULTILINE)
_HEADER = re.compile(r"^Patch Set \d+:.*$")
NEVER_REVIEWED_KINDS = {"NO_CODE_CHANGE", "NO_CHANGE"}
SUBSCRIBED = ("patchset-created", "comment-added")
IGNORE_IN_MESSAGE = "ignore-in-message"  # /ignore in the change message, not in a thread: answered
_DIGITS = re.compile(r"[0-9]{1,10}")
_MODEL_NAME = re.compile(r" or instance of \w+")  # pydantic names our classes: not for answers

router = Router()


class EventError(ValueError):
    """Not a Gerrit event the bot can read; the message is one line."""


_one_line = one_line


@dataclass(frozen=True)
class GerritJob:
    """A Gerrit job's payload: written by the handlers below, read by bot.platforms.gerrit."""

    project: str
    number: int
    branch: str | None = None
    revision: str | None = None  # None: the current patchset, resolved when the job runs
    patchset: int | None = None
    trigger: str = ""
    requested_by: str | None = None

    def request(self, kind: str, once_per_revision: bool = False) -> JobRequest:
        return JobRequest(kind, change_key(self.project, self.number), asdict(self), once_per_revision)

    @classmethod
    def of(cls, payload: dict[str, Any]) -> GerritJob:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


# -- exactly the fields the bot reads ("any field may be missing"; others are kept, unread) -----
def _whole_number(value: Any) -> Any:
    """Gerrit sends numbers as JSON numbers (2.x sent some as digit strings): nothing else."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


def _epoch(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number of seconds since the epoch")
    return value


Number = Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=2**31 - 1)]
# finite, and a date datetime can represent (the stream's catch-up turns it back into one)
EpochSeconds = Annotated[float, BeforeValidator(_epoch), Field(ge=0, le=253402300799, allow_inf_nan=False)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=1000)]
Revision = Annotated[StrictStr, Field(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]


class _Obj(BaseModel):
    model_config = ConfigDict(extra="allow")


class GerritEvent(_Obj):
    """The envelope every event must have, handled or not."""

    type: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    eventCreatedOn: EpochSeconds | None = None
    change: _Obj | None = None


class _Account(_Obj):
    username: StrictStr | None = None
    email: StrictStr | None = None


class _Change(_Obj):
    project: Name
    number: Number
    branch: Name
    wip: StrictBool | None = None  # null reads as absent
    private: StrictBool | None = None
    status: StrictStr | None = None  # absent: NEW


class _PatchSet(_Obj):
    number: Number
    revision: Revision
    kind: StrictStr | None = None  # absent: REWORK


class _ChangeEvent(GerritEvent):
    change: _Change
    patchSet: _PatchSet
    author: _Account | None = None  # both read for the delivery id
    uploader: _Account | None = None


class PatchsetCreatedEvent(_ChangeEvent):
    pass


class CommentAddedEvent(_ChangeEvent):
    comment: StrictStr | None = None
    tag: StrictStr | None = None


EVENT_SHAPES: dict[str, type[GerritEvent]] = {
    "patchset-created": PatchsetCreatedEvent,
    "comment-added": CommentAddedEvent,
}


def parse_event(raw: bytes | str) -> dict[str, Any]:
    """One stream line or webhook body → its JSON object; EventError when it is not one.

    pydantic-core's parser bounds nesting (no RecursionError) and refuses invalid UTF-8, lone
    surrogates and NaN/Infinity."""
    try:
        data = pydantic_core.from_json(raw, allow_inf_nan=False)
    except (ValueError, TypeError) as exc:  # TypeError: a str with lone surrogates
        raise EventError(_one_line(f"not JSON: {exc}")) from None
    if not isinstance(data, dict):
        raise EventError("not a Gerrit event: not a JSON object")
    return data


def validate_event(data: Any) -> GerritEvent:
    """The event's model (the envelope for types without handlers); EventError otherwise."""
    if not isinstance(data, dict):
        raise EventError("not a Gerrit event: not a JSON object")
    try:
        envelope = GerritEvent.model_validate(data)
        model = EVENT_SHAPES.get(envelope.type)
        return model.model_validate(data) if model else envelope
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        kind = data.get("type")
        what = f"a valid {kind} event" if isinstance(kind, str) and kind in EVENT_SHAPES else "a Gerrit event"
        msg = _MODEL_NAME.sub("", first["msg"])
        raise EventError(_one_line(f"not {what}: {where}: {msg}")) from None


def change_key(project: str, number: int) -> str:
    return f"gerrit:{project}~{number}"


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def delivery_id(data: dict[str, Any]) -> str:
    """Gerrit events carry no id; this identifies one event across webhook retries."""
    change, ps = _field(data, "change"), _field(data, "patchSet")
    author = _field(_field(data, "author") or _field(data, "uploader"), "username") or ""
    return (
        f"gerrit:{_field(data, 'type')}:{_field(change, 'project')}~{_field(change, 'number')}:"
        f"{_field(ps, 'number')}:{author}:{_field(data, 'eventCreatedOn')}"
    )


def _without_header(comment: str) -> str:
    """A change message without Gerrit's ``Patch Set N: <votes>`` header line."""
    lines = comment.splitlines()
    if lines and _HEADER.match(lines[0]):
        lines = lines[1:]
    return "\n".join(lines)


def rescan_requested(comment: str) -> bool:
    """``/rescan`` on a line of its own, after Gerrit's ``Patch Set N: <votes>`` header."""
    return bool(RESCAN.search(_without_header(comment)))


@router.register("patchset-created")
async def on_patchset(
    event: Event, settings: GerritSettings, decision: Decision, ev: PatchsetCreatedEvent
) -> None:
    change, ps = ev.change, ev.patchSet
    kind, status = ps.kind or "REWORK", change.status or "NEW"
    if kind in NEVER_REVIEWED_KINDS:
        decision.ignored = f"patchset kind {kind}"
    elif kind == "TRIVIAL_REBASE" and not settings.review_trivial_rebase:
        decision.ignored = "trivial rebase"
    elif change.wip and not settings.review_wip:
        decision.ignored = "work-in-progress change"
    elif change.private and not settings.review_private:
        decision.ignored = "private change"
    elif status != "NEW":
        decision.ignored = f"change is {_one_line(status)}"
    else:
        job = GerritJob(
            change.project, change.number, change.branch, ps.revision, ps.number, "patchset-created"
        )
        decision.jobs.append(job.request("review", once_per_revision=True))


@router.register("comment-added")
async def on_comment(
    event: Event, settings: GerritSettings, decision: Decision, ev: CommentAddedEvent
) -> None:
    author = ev.author or _Account()
    if settings.user and author.username == settings.user:
        decision.ignored = "our own comment"
        return
    if (ev.tag or "").startswith("autogenerated:"):
        decision.ignored = "autogenerated comment"
        return
    requester = author.username or author.email or ""
    if not rescan_requested(ev.comment or ""):
        if INLINE_COMMENTS.search(ev.comment or ""):
            # Inline replies may hold /ignore: the platform reads them (and who may) at admission.
            job = GerritJob(ev.change.project, ev.change.number, ev.change.branch,
                            patchset=ev.patchSet.number, trigger="ignore", requested_by=requester)  # fmt: skip
            decision.jobs.append(job.request("ignore"))
            return
        if IGNORE_LINE.search(_without_header(ev.comment or "")):  # answered with where it goes
            job = GerritJob(ev.change.project, ev.change.number, ev.change.branch,
                            patchset=ev.patchSet.number, trigger=IGNORE_IN_MESSAGE, requested_by=requester)  # fmt: skip
            decision.jobs.append(job.request("ignore"))
            return
        decision.ignored = "no /rescan command"
        return
    job = GerritJob(
        ev.change.project,
        ev.change.number,
        ev.change.branch,
        revision=None,  # the current patchset, resolved when the job runs
        patchset=ev.patchSet.number,
        trigger="rescan",
        requested_by=requester,
    )
    decision.jobs.append(job.request("rescan"))


async def decide(data: Any, settings: GerritSettings) -> Decision:
    """Validate and route one event; EventError (a ValueError) when it is not one the bot can read."""
    ev = validate_event(data)
    decision = Decision()
    if ev.type not in SUBSCRIBED:
        decision.ignored = f"{_one_line(ev.type)} is not handled"
        return decision
    await router.dispatch(Event(data, event=ev.type, delivery_id=delivery_id(data)), settings, decision, ev)
    return decision

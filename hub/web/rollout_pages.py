"""The rollouts of releases to the doors (issue 17): the list, one rollout with its stages and
each door's step (why, since when, what it waits for), and, for network admins, starting,
pausing, resuming and aborting one (after a confirmation).

The same services as the API's ``/rollouts`` do the work (hub.services.rollouts,
.rollout_reads): a site operator sees only their sites' doors and no controls, and the forms
post to routes that refuse everyone but a network admin with 403; like every form of the
dashboard they are checked to come from the hub's own pages (``SameOrigin``). A refused start
comes back on the form in the service's words.

No live feed: the pages say when they were drawn and offer to draw them again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from hub.auth import Principal, Role
from hub.http.deps import Store
from hub.services import releases, rollout_reads, rollouts, sites
from hub.services.errors import ServiceError
from hub.services.rollout_models import (
    DEFAULT_DEADLINE_MINUTES,
    DEFAULT_STAGES,
    MAX_DEADLINE_MINUTES,
    MAX_SITES,
    RolloutDetail,
    RolloutIn,
    RolloutState,
    Waiting,
)
from hub.services.scope import Scope
from hub.services.sites import describe
from hub.web.i18n import translator
from hub.web.session import PREFIX, SameOrigin, Viewer
from hub.web.templating import form_page, page

router = APIRouter(prefix=f"{PREFIX}/rollouts", include_in_schema=False)
#: A rollout's number in an address.
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: The doors a rollout's page lists at most (a rollout has up to 10,000): the ones that need
#: a look first; the API lists them all.
DEVICES_SHOWN = 500
#: The rollouts the list shows at a time; ``before`` pages on.
LISTED = 50
#: The order a rollout's doors are listed in: what needs a look first.
_ORDER = {"failed": 0, "rolled_back": 0, "refused": 0, "restarting": 1, "installed": 1}
_ORDER |= {"downloading": 1, "ordered": 1, "pending": 2, "healthy": 3}


def N_(message: str) -> str:
    """Marks a text for the catalogues (``make messages``); the template translates it."""
    return message


#: Each step and state in words (the templates translate them).
STEPS = {
    "pending": N_("not ordered yet"),
    "ordered": N_("ordered"),
    "downloading": N_("downloading"),
    "installed": N_("installed"),
    "restarting": N_("restarting"),
    "healthy": N_("healthy"),
    "rolled_back": N_("rolled back"),
    "failed": N_("failed"),
    "refused": N_("refused"),
}
STATES = {
    RolloutState.RUNNING: N_("running"),
    RolloutState.PAUSED: N_("paused"),
    RolloutState.ABORTED: N_("aborted"),
    RolloutState.DONE: N_("done"),
}
#: What a door not ordered yet waits for (hub.services.rollout_models.Waiting).
WAITS = {
    Waiting.NOT_RUNNING: N_("not ordered: the rollout is %(state)s"),
    Waiting.STAGE: N_("stage %(stage)s has not begun"),
    Waiting.OFFLINE: N_("offline: ordered once it is back"),
    Waiting.WINDOW: N_("outside its site's update window"),
    Waiting.NEXT_ROUND: N_("to be ordered"),
}
#: The hub's own words as a door's detail (hub.services.rollouts).
DETAILS = {"already on it": N_("already on it")}


class RolloutForm(BaseModel):
    """The form "Start a rollout", as typed: shown again beside an error."""

    version: str = ""
    target: str = "network"
    sites: list[str] = []
    stages: str = DEFAULT_STAGES
    max_failures: str = "0"
    max_failure_percent: str = ""
    deadline_minutes: str = str(DEFAULT_DEADLINE_MINUTES)


def steerer(who: Viewer) -> Principal:
    """The signed-in user, if they steer rollouts (network admins); 403 for everyone else."""
    Scope(who).require_role(Role.NETWORK_ADMIN)
    return who


Steering = Annotated[Principal, Depends(steerer)]


@router.get("")
def rollouts_page(
    request: Request,
    store: Store,
    who: Viewer,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    return _list(request, store, who, RolloutForm(), before=before)


@router.post("", dependencies=[SameOrigin])
def start_rollout(
    request: Request,
    store: Store,
    who: Steering,
    version: Annotated[str, Form(max_length=64)] = "",
    target: Annotated[str, Form(max_length=10)] = "network",
    sites: Annotated[list[str], Form(max_length=MAX_SITES)] = [],  # noqa: B006 - FastAPI copies it
    stages: Annotated[str, Form(max_length=200)] = DEFAULT_STAGES,
    max_failures: Annotated[str, Form(max_length=10)] = "",
    max_failure_percent: Annotated[str, Form(max_length=10)] = "",
    deadline_minutes: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Start it and show it; a refusal comes back on the form, as typed."""
    form = RolloutForm(
        version=version,
        target=target,
        sites=sites,
        stages=stages,
        max_failures=max_failures,
        max_failure_percent=max_failure_percent,
        deadline_minutes=deadline_minutes,
    )
    _ = translator(request)
    try:
        asked = _asked(form, _)
    except ValueError as exc:
        refused = _("Not started: %(why)s") % {"why": exc}
        return _list(request, store, who, form, refused)
    try:
        made = rollouts.create_rollout(store, who, asked)
    except ServiceError as exc:
        return _list(request, store, who, form, exc)
    return RedirectResponse(f"{PREFIX}/rollouts/{made.id}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/{rollout_id}")
def rollout_page(
    request: Request, rollout_id: RolloutId, store: Store, who: Viewer
) -> HTMLResponse:
    shown = rollout_reads.get_rollout(store, who, rollout_id)
    return _detail(request, who, shown)


@router.post("/{rollout_id}/pause", dependencies=[SameOrigin])
def pause(rollout_id: RolloutId, store: Store, who: Steering) -> RedirectResponse:
    rollouts.pause_rollout(store, who, rollout_id)
    return _to_rollout(rollout_id)


@router.post("/{rollout_id}/resume", dependencies=[SameOrigin])
def resume(rollout_id: RolloutId, store: Store, who: Steering) -> RedirectResponse:
    rollouts.resume_rollout(store, who, rollout_id)
    return _to_rollout(rollout_id)


@router.get("/{rollout_id}/abort")
def confirm_abort(
    request: Request, rollout_id: RolloutId, store: Store, who: Steering
) -> HTMLResponse:
    """The confirmation step: what aborting does, and the button that does it."""
    shown = rollout_reads.get_rollout(store, who, rollout_id)
    return page(request, "rollout_abort.html", who, r=shown, states=STATES)


@router.post("/{rollout_id}/abort", dependencies=[SameOrigin])
def abort(rollout_id: RolloutId, store: Store, who: Steering) -> RedirectResponse:
    rollouts.abort_rollout(store, who, rollout_id)
    return _to_rollout(rollout_id)


def _asked(form: RolloutForm, _: Callable[[str], str]) -> RolloutIn:
    """The form as the service's request; ValueError saying which field is wrong."""
    numbers: dict[str, int | None] = {}
    for name, label, low, high in (
        ("max_failures", _("Pause after more failures than"), 0, 10_000),
        ("max_failure_percent", _("or more than this share failed, in percent"), 1, 100),
        ("deadline_minutes", _("Minutes a door may take"), 1, MAX_DEADLINE_MINUTES),
    ):
        typed = getattr(form, name).strip()
        if not typed:
            numbers[name] = None
            continue
        if not typed.isascii() or not typed.isdigit() or not low <= int(typed) <= high:
            words = _("%(field)s: a whole number from %(low)s to %(high)s")
            raise ValueError(words % {"field": label, "low": low, "high": high})
        numbers[name] = int(typed)
    if form.target == "sites" and not form.sites:
        raise ValueError(_("choose the sites, or the whole network"))
    percent = numbers["max_failure_percent"]
    try:
        return RolloutIn(
            version=form.version,
            sites=form.sites if form.target == "sites" else None,
            stages=form.stages,
            max_failures=numbers["max_failures"],
            max_failure_share=percent / 100 if percent is not None else None,
            deadline_minutes=numbers["deadline_minutes"] or DEFAULT_DEADLINE_MINUTES,
        )
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def _to_rollout(rollout_id: int) -> RedirectResponse:
    return RedirectResponse(
        f"{PREFIX}/rollouts/{rollout_id}", status_code=status.HTTP_303_SEE_OTHER
    )


def _list(
    request: Request,
    store: Store,
    who: Principal,
    form: RolloutForm,
    error: str | ServiceError | None = None,
    before: int | None = None,
) -> HTMLResponse:
    """The list (a page of ``LISTED``, older than ``before``), and for network admins the
    form to start one (``form`` as typed, ``error`` beside it)."""
    shown = rollout_reads.list_rollouts(store, who, limit=LISTED + 1, before=before)
    context: dict[str, object] = {
        "rollouts": [(r, rollout_reads.tally(r.steps)) for r in shown[:LISTED]],
        "older": shown[LISTED - 1].id if len(shown) > LISTED else None,
        "states": STATES,
        "drawn": datetime.now(UTC),
    }
    if who.role == Role.NETWORK_ADMIN:
        context |= {
            "form": form,
            "releases": releases.list_releases(store),
            "sites": sites.list_sites(store, who),
            "max_deadline": MAX_DEADLINE_MINUTES,
        }
    return form_page(request, "rollouts.html", who, error, None, **context)


def _detail(request: Request, who: Principal, shown: RolloutDetail) -> HTMLResponse:
    doors = sorted(shown.device_list, key=lambda d: (_ORDER.get(d.step, 1), d.stage))
    return page(
        request,
        "rollout.html",
        who,
        r=shown,
        tally=rollout_reads.tally(shown.steps),
        stages=[(s, rollout_reads.tally(s.steps)) for s in shown.stage_list],
        doors=doors[:DEVICES_SHOWN],
        more=max(len(doors) - DEVICES_SHOWN, 0),
        steers=who.role == Role.NETWORK_ADMIN,
        step_words=STEPS,
        states=STATES,
        waits=WAITS,
        details=DETAILS,
        drawn=datetime.now(UTC),
    )

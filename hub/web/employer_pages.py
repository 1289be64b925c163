"""An employer's pages (``/ui/company``): their staff with each person's allowance and
account, inviting someone onto the staff (or again), taking someone off it (after a second
step that says what it ends), and one person's allowance. The month's use and the statement
are statement_pages.py's.

The same services as the API's ``/company`` do the work (hub.services.staff), on the signed-in
admin's own company alone: no address here takes a company id, and a member of another
company answers as one that does not exist. A refused form comes back as typed, with the
reason beside it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from hub.auth import Principal, Role
from hub.http.deps import PublicUrl, Publisher, SendsMail, Store
from hub.services import companies, staff
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from hub.services.invitations import Links
from hub.services.scope import Scope
from hub.services.staff import Allowance, StaffIn, StaffMember
from hub.web.i18n import translator
from hub.web.session import PREFIX, SameOrigin, Someone
from hub.web.templating import form_page, page

router = APIRouter(prefix=f"{PREFIX}/company", include_in_schema=False)
#: Staff listed on one page (the next page goes on after the last one's id).
PAGE_SIZE = 100
#: A member id in an address, with room to spare (the service says whether it is staff).
MemberId = Annotated[str, Path(max_length=64)]
#: The notices the staff list shows after a change (an id, as the service's ids are).
Notice = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


def signed_in_employer(who: Someone) -> Principal:
    """The signed-in company admin; 403 for anyone else."""
    Scope(who).require_role(Role.COMPANY_ADMIN)
    if who.company_id is None:
        raise Forbidden("your account looks after no company")
    return who


Employer = Annotated[Principal, Depends(signed_in_employer)]


class StaffForm(BaseModel):
    """The form "Add a person", as typed."""

    id: str = ""
    name: str = ""
    email: str = ""


class AllowanceForm(BaseModel):
    """The allowance form, as typed: days (empty: the company's default), and whether the
    person may book at all of the company's sites or only at those ticked."""

    days: str = ""
    rule: str = "all"
    sites: list[str] = []


def _company(store: Store, who: Principal) -> companies.CompanyIn:
    assert who.company_id is not None  # signed_in_employer made sure
    return companies.get_company(store, who.company_id)


@router.get("")
def staff_page(
    request: Request,
    store: Store,
    who: Employer,
    after: Annotated[str | None, Query(max_length=64)] = None,
    saved: Notice = None,
    removed: Notice = None,
    cancelled: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> HTMLResponse:
    """The staff in id order (a page of ``PAGE_SIZE``), and what was just changed."""
    people = staff.list_staff(store, who, after, PAGE_SIZE)
    more = people[-1].id if len(people) == PAGE_SIZE else None
    notice = {"saved": saved, "removed": removed, "cancelled": cancelled}
    return page(
        request,
        "employer/staff.html",
        who,
        company=_company(store, who),
        people=people,
        more=more,
        after=after,
        notice=notice,
    )


@router.get("/staff/new")
def new_staff_form(request: Request, store: Store, who: Employer) -> HTMLResponse:
    return _new_staff(request, store, who, StaffForm())


@router.post("/staff/new", dependencies=[SameOrigin])
def add_staff(
    request: Request,
    store: Store,
    publisher: Publisher,
    who: Employer,
    base_url: PublicUrl,
    sends_mail: SendsMail,
    id: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
    email: Annotated[str, Form(max_length=300)] = "",
) -> HTMLResponse:
    """Put the person on the staff and invite them; the page says where the invitation went
    (or shows the link to hand over, on a hub that sends no mail)."""
    form = StaffForm(id=id.strip(), name=name.strip(), email=email.strip())
    try:
        body = StaffIn(id=form.id, name=form.name, email=form.email)
    except ValidationError as exc:
        return _new_staff(request, store, who, form, _staff_refusal(request, exc))
    try:
        added = staff.add_staff(store, publisher, who, body, Links(base_url, sends_mail))
    except (Conflict, NotFound) as exc:
        return _new_staff(request, store, who, form, exc)
    return page(request, "employer/invited.html", who, added=added, invitation=added.invitation)


@router.post("/staff/{member}/invitation", dependencies=[SameOrigin])
def invite_again(
    request: Request,
    member: MemberId,
    store: Store,
    publisher: Publisher,
    who: Employer,
    base_url: PublicUrl,
    sends_mail: SendsMail,
) -> HTMLResponse:
    """A new invitation for someone on the staff (the earlier link ends)."""
    person = staff.get_staff(store, who, member)
    if person.email is None:
        _ = translator(request)
        raise Invalid(
            _("%(name)s has no e-mail address: ask the network's admins.") % {"name": person.name}
        )
    body = StaffIn(id=person.id, name=person.name, email=person.email)
    added = staff.add_staff(store, publisher, who, body, Links(base_url, sends_mail))
    return page(request, "employer/invited.html", who, added=added, invitation=added.invitation)


@router.get("/staff/{member}/remove")
def confirm_removal(
    request: Request, member: MemberId, store: Store, who: Employer
) -> HTMLResponse:
    """The second step: whom, and what taking them off the staff ends."""
    person = staff.get_staff(store, who, member)
    return page(request, "employer/remove.html", who, person=person)


@router.post("/staff/{member}/remove", dependencies=[SameOrigin])
def remove_staff(
    member: MemberId, store: Store, publisher: Publisher, who: Employer, sends_mail: SendsMail
) -> Response:
    # A desk freed by the removal goes to the first waiting member, who is told by mail.
    removed = staff.remove_staff(store, publisher, who, member, sends_mail=sends_mail)
    where = f"{PREFIX}/company?removed={member}&cancelled={removed.cancelled_bookings}"
    return RedirectResponse(where, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/staff/{member}/allowance")
def allowance_form(request: Request, member: MemberId, store: Store, who: Employer) -> HTMLResponse:
    person = staff.get_staff(store, who, member)
    return _allowance(request, store, who, person, _as_form(person.allowance))


@router.post("/staff/{member}/allowance", dependencies=[SameOrigin])
def set_allowance(
    request: Request,
    member: MemberId,
    store: Store,
    who: Employer,
    days: Annotated[str, Form(max_length=10)] = "",
    rule: Annotated[str, Form(max_length=10)] = "all",
    sites: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """Save the allowance and go back to the list; refused, the form again as typed."""
    person = staff.get_staff(store, who, member)
    form = AllowanceForm(days=days.strip(), rule=rule, sites=sites)
    _ = translator(request)
    try:
        per_month = int(form.days) if form.days else None
        allowance = Allowance(
            days_per_month=per_month, sites=form.sites if form.rule == "some" else None
        )
    except (ValueError, ValidationError) as exc:
        error = _(
            "Desk days a month: a whole number from 0 to 31, or empty for your company's default."
        )
        if isinstance(exc, ValidationError) and exc.errors()[0]["loc"][0] == "sites":
            error = _("Sites: choose among your company's sites.")
        return _allowance(request, store, who, person, form, error)
    try:
        staff.set_allowance(store, who, member, allowance)
    except Invalid as exc:
        return _allowance(request, store, who, person, form, exc)
    return RedirectResponse(
        f"{PREFIX}/company?saved={member}", status_code=status.HTTP_303_SEE_OTHER
    )


def _as_form(allowance: Allowance | None) -> AllowanceForm:
    if allowance is None:
        return AllowanceForm()
    days = "" if allowance.days_per_month is None else str(allowance.days_per_month)
    if allowance.sites is None:
        return AllowanceForm(days=days)
    return AllowanceForm(days=days, rule="some", sites=allowance.sites)


def _new_staff(
    request: Request,
    store: Store,
    who: Principal,
    form: StaffForm,
    error: str | ServiceError | None = None,
) -> HTMLResponse:
    company = _company(store, who)
    return form_page(request, "employer/new.html", who, error, company=company, form=form)


def _allowance(
    request: Request,
    store: Store,
    who: Principal,
    person: StaffMember,
    form: AllowanceForm,
    error: str | ServiceError | None = None,
) -> HTMLResponse:
    company = _company(store, who)
    return form_page(
        request, "employer/allowance.html", who, error, company=company, person=person, form=form
    )


def _staff_refusal(request: Request, exc: ValidationError) -> str:
    """What is wrong with the form "Add a person", for its first wrong field, in words."""
    _ = translator(request)
    field = exc.errors()[0]["loc"][0]
    if field == "id":
        return _(
            "Id: lower-case letters, digits, - and _, starting with a letter or digit,"
            " at most 63 characters (for example anna-schmidt)."
        )
    if field == "name":
        return _("Name: from 1 to 200 characters.")
    return _("E-mail: an address such as anna@example.org.")

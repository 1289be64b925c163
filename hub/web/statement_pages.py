"""A company's month: for its company admin the use page (``/ui/company/use``: per person and
in total, days booked and used, sites) and the printable statement with its CSV; for network
admins and operators a company's statement to invoice from (``/ui/companies/{id}/statement``,
an operator's being their own sites' part). Days only, never the times anyone entered: the
service (hub.services.company_use) has none to give.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from hub.auth import Principal
from hub.http.deps import Store
from hub.http.responses import csv_download
from hub.services import company_use
from hub.services.company_use import CompanyMonth
from hub.web.employer_pages import Employer
from hub.web.pages import MonthQuery
from hub.web.session import PREFIX, Viewer
from hub.web.templating import page

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CompanyId = Annotated[str, Path(max_length=64)]


def _own(store: Store, who: Principal, month: str | None) -> CompanyMonth:
    """The company admin's own company's month (this month where its sites are, by default)."""
    assert who.company_id is not None  # Employer made sure
    month = month or company_use.this_month(store, who.company_id)
    return company_use.company_month(store, who.company_id, month)


@router.get("/company/use")
def use_page(
    request: Request, store: Store, who: Employer, month: MonthQuery = None
) -> HTMLResponse:
    statement = _own(store, who, month)
    return page(
        request,
        "employer/use.html",
        who,
        s=statement,
        earlier=shift(statement.month, -1),
        later=shift(statement.month, 1),
    )


@router.get("/company/statement")
def own_statement(
    request: Request, store: Store, who: Employer, month: MonthQuery = None
) -> HTMLResponse:
    statement = _own(store, who, month)
    csv_href = f"{PREFIX}/company/statement.csv?month={statement.month}"
    back = f"{PREFIX}/company/use?month={statement.month}"
    return _statement_page(request, who, statement, csv_href, back)


@router.get("/company/statement.csv")
def own_statement_csv(store: Store, who: Employer, month: MonthQuery = None) -> Response:
    statement = _own(store, who, month)
    return _csv(statement)


@router.get("/companies/{company}/statement")
def company_statement(
    request: Request, company: CompanyId, store: Store, who: Viewer, month: MonthQuery = None
) -> HTMLResponse:
    """A company's statement for staff who invoice it (network admins whole, an operator
    their sites' part; technicians see no people: 403)."""
    month = month or company_use.this_month(store, company)
    statement = company_use.visible_month(store, who, company, month)
    csv_href = f"{PREFIX}/companies/{company}/statement.csv?month={statement.month}"
    return _statement_page(request, who, statement, csv_href, f"{PREFIX}/reports?month={month}")


@router.get("/companies/{company}/statement.csv")
def company_statement_csv(
    company: CompanyId, store: Store, who: Viewer, month: MonthQuery = None
) -> Response:
    month = month or company_use.this_month(store, company)
    return _csv(company_use.visible_month(store, who, company, month))


def shift(month: str, months: int) -> str:
    """The month ``months`` before (negative) or after ``month``, as ``YYYY-MM``."""
    first = date.fromisoformat(f"{month}-01")
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _statement_page(
    request: Request, who: Principal, statement: CompanyMonth, csv_href: str, back: str
) -> HTMLResponse:
    return page(
        request,
        "employer/statement.html",
        who,
        s=statement,
        csv_href=csv_href,
        back=back,
        today=date.today(),
        nav="use" if who.company_id == statement.company else "reports",
    )


def _csv(statement: CompanyMonth) -> Response:
    text = company_use.statement_csv(statement)
    return csv_download(text, f"hafen-{statement.company}-{statement.month}.csv")

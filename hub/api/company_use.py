"""What a company's staff used in a month: for its company admin (``/company/...``) and for
the operators who invoice it (``/companies/{id}/statement``); days, never times."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hub.auth import Principal
from hub.http.deps import Caller, EmployerCompany, Store
from hub.services import company_use
from hub.services.company_use import CompanyMonth

router = APIRouter(tags=["companies"])
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


def _csv(statement: CompanyMonth) -> Response:
    name = f"{statement.company}-{statement.month}.csv"
    return Response(
        company_use.statement_csv(statement),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/company/use", response_model=CompanyMonth)
def my_company_use(month: Month, company: EmployerCompany, store: Store) -> CompanyMonth:
    """Your staff's use in a month: per person and in total, days booked and used, sites."""
    return company_use.company_month(store, company, month)


@router.get("/company/statement.csv", response_class=Response)
def my_company_statement(month: Month, company: EmployerCompany, store: Store) -> Response:
    return _csv(company_use.company_month(store, company, month))


def _statement(store: Store, who: Principal, company: str, month: str) -> CompanyMonth:
    return company_use.visible_month(store, who, company, month)


@router.get("/companies/{company}/statement", response_model=CompanyMonth)
def statement(company: str, month: Month, store: Store, who: Caller) -> CompanyMonth:
    """A company's month to invoice from: network admins whole, operators their sites' part."""
    return _statement(store, who, company, month)


@router.get("/companies/{company}/statement.csv", response_class=Response)
def statement_csv(company: str, month: Month, store: Store, who: Caller) -> Response:
    return _csv(_statement(store, who, company, month))

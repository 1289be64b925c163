"""Plans (which sites, which hours) and the grants that give members a plan or some sites."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from hafen.acl import TimeWindow
from hafen.ids import Slug
from hub import db
from hub.access_changes import plan_state
from hub.access_compiler import member_reach
from hub.access_lists import AclPublisher
from hub.services.bounds import AwareInstant
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.members import require_member
from hub.services.publishing import publish_member, publish_plan_change
from hub.services.sites import require_sites

#: The most desk days a month an allowance can give (every day of the longest month).
MAX_DAYS_PER_MONTH = 31
DaysPerMonth = Annotated[int, Field(ge=0, le=MAX_DAYS_PER_MONTH)]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    sites: list[Slug] | None = None
    windows: list[TimeWindow] | None = None
    #: Desk days a month its members may book (a half day counts as a day); None: no limit.
    days_per_month: DaysPerMonth | None = None
    #: ``standing``: its members come in at its sites and hours without booking;
    #: ``booked``: only where and when they booked (a flex plan of so many days a month).
    access: Literal["standing", "booked"] = "standing"


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Slug | None = None
    sites: list[Slug] | None = None
    #: In UTC once read (bounds.AwareInstant): SQLite keeps only the wall-clock fields.
    valid_from: AwareInstant | None = None
    valid_until: AwareInstant | None = None

    @model_validator(mode="after")
    def _scope(self) -> GrantIn:
        if self.plan is None and self.sites is None:
            raise ValueError("a grant without a plan names its sites")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


def create_plan(engine: Engine, plan: PlanIn) -> PlanIn:
    """A new plan; nobody has it yet, so no door hears of it."""
    try:
        with engine.begin() as conn:
            require_sites(conn, plan.sites or [])
            conn.execute(insert(db.plans).values(**plan.model_dump(mode="json")))
    except IntegrityError:
        raise Conflict(f"plan {plan.id!r} exists") from None
    return plan


def list_plans(engine: Engine, after: str | None = None, limit: int = 100) -> list[PlanIn]:
    """The network's plans in id order, from the one after ``after``."""
    p = db.plans.c
    query = select(db.plans).order_by(p.id).limit(limit)
    if after:
        query = query.where(p.id > after)
    with engine.connect() as conn:
        return [_plan(row) for row in conn.execute(query)]


def get_plan(engine: Engine, plan: str) -> PlanIn:
    with engine.connect() as conn:
        row = conn.execute(select(db.plans).where(db.plans.c.id == plan)).one_or_none()
    if row is None:
        raise NotFound(f"no plan {plan!r}")
    return _plan(row)


def _plan(row: Row) -> PlanIn:
    return PlanIn.model_validate(
        {
            "id": row.id,
            "sites": row.sites,
            "windows": row.windows,
            "days_per_month": row.days_per_month,
            "access": row.access,
        }
    )


def change_plan(engine: Engine, publisher: AclPublisher | None, plan: PlanIn) -> PlanIn:
    """Change a plan's sites or hours; every site it reached or reaches gets its new list."""
    with engine.begin() as conn:
        before = plan_state(conn, plan.id, lock=True)
        if before is None:
            raise NotFound(f"no plan {plan.id!r}")
        require_sites(conn, plan.sites or [])
        values = plan.model_dump(mode="json", exclude={"id"})
        conn.execute(update(db.plans).where(db.plans.c.id == plan.id).values(**values))
    publish_plan_change(publisher, before)
    return plan


def add_grant(
    engine: Engine, publisher: AclPublisher | None, member: str, grant: GrantIn
) -> GrantIn:
    """Give a member a plan, or some sites, for a while or for good."""
    with engine.begin() as conn:
        require_member(conn, member)
        if (
            grant.plan
            and conn.scalar(select(db.plans.c.id).where(db.plans.c.id == grant.plan)) is None
        ):
            raise Invalid(f"no plan {grant.plan!r}")
        require_sites(conn, grant.sites or [])
        conn.execute(
            insert(db.grants).values(
                member_id=member,
                source="plan",
                plan_id=grant.plan,
                sites=grant.sites,
                valid_from=grant.valid_from,
                valid_until=grant.valid_until,
            )
        )
        reach = member_reach(conn, member)
    publish_member(publisher, member, reach)
    return grant

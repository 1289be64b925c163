"""Plans: which sites, at which hours. A changed plan reaches every door of its sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from hub.http.deps import Admin, Publisher, Store
from hub.services import plans
from hub.services.plans import PlanIn

router = APIRouter(prefix="/plans", tags=["members"])


@router.post("", response_model=PlanIn, status_code=status.HTTP_201_CREATED)
def create_plan(plan: PlanIn, store: Store, _: Admin) -> PlanIn:
    return plans.create_plan(store, plan)


@router.put("/{plan}", response_model=PlanIn)
def change_plan(plan: str, body: PlanIn, store: Store, publisher: Publisher, _: Admin) -> PlanIn:
    """Change a plan's sites or hours; every site it reached or reaches gets its new list."""
    if body.id != plan:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "id does not match the path")
    return plans.change_plan(store, publisher, body)


@router.get("", response_model=list[PlanIn])
def list_plans(
    store: Store,
    _: Admin,
    after: Annotated[str | None, Query(max_length=64, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PlanIn]:
    """The network's plans, in id order."""
    return plans.list_plans(store, after, limit)


@router.get("/{plan}", response_model=PlanIn)
def get_plan(plan: str, store: Store, _: Admin) -> PlanIn:
    return plans.get_plan(store, plan)

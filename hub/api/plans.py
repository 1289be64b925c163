"""Plans: which sites, at which hours. A changed plan reaches every door of its sites."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

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

"""Fleet updates (issue 17): the releases the hub holds, and their rollouts to the doors, each
with its stages and every door's step, why, and what a door not ordered yet waits for.

Network admins start and steer rollouts; operators (their own sites' doors only) and
technicians read them (hub.services.rollouts, .rollout_reads).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from hub.http.deps import Admin, Caller, Store
from hub.services import releases, rollout_reads, rollouts
from hub.services.releases import Release
from hub.services.rollout_models import Rollout, RolloutDetail, RolloutIn

router = APIRouter(tags=["rollouts"])
#: A rollout's number, as the list gives it.
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The rollout's id.")]


@router.get("/releases", response_model=list[Release])
def list_releases(store: Store, _: Caller) -> list[Release]:
    """The releases the hub holds (``hafen hub release add``), newest first: what a rollout
    may take; ``rollbacks``: the versions a signed rollback to it is held from (``hafen hub
    release rollback``)."""
    return releases.list_releases(store)


@router.get("/rollouts", response_model=list[Rollout])
def list_rollouts(
    store: Store,
    who: Caller,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Page on: the last id you got.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=rollout_reads.MAX_LISTED)] = 50,
) -> list[Rollout]:
    """Rollouts, newest first, each with its doors' steps counted; an operator sees those
    that touch their sites, counting only their sites' doors."""
    return rollout_reads.list_rollouts(store, who, limit=limit, before=before_id)


@router.post("/rollouts", response_model=RolloutDetail, status_code=status.HTTP_201_CREATED)
def create_rollout(asked: RolloutIn, store: Store, who: Admin) -> RolloutDetail:
    """Start rolling a release out (network admins): its doors are fixed now, in stages;
    the hub then orders them stage by stage. 422 for a release the hub does not hold, a
    target with no door to update, or a door on a newer version without ``"rollback":
    true`` or without a rollback held from its version; 409 for a door in another running or
    paused rollout."""
    return rollouts.create_rollout(store, who, asked)


@router.get("/rollouts/{rollout_id}", response_model=RolloutDetail)
def get_rollout(rollout_id: RolloutId, store: Store, who: Caller) -> RolloutDetail:
    """One rollout: its stages, and each door's step with ``why``; a door not ordered yet
    says what it waits for (``waits_for``: not_running, stage, offline, window,
    next_round)."""
    return rollout_reads.get_rollout(store, who, rollout_id)


@router.post("/rollouts/{rollout_id}/pause", response_model=RolloutDetail)
def pause_rollout(rollout_id: RolloutId, store: Store, who: Admin) -> RolloutDetail:
    """Order no more doors (those ordered finish); 409 unless it is running."""
    return rollouts.pause_rollout(store, who, rollout_id)


@router.post("/rollouts/{rollout_id}/resume", response_model=RolloutDetail)
def resume_rollout(rollout_id: RolloutId, store: Store, who: Admin) -> RolloutDetail:
    """Order doors again; the failures so far are accepted. 409 unless it is paused."""
    return rollouts.resume_rollout(store, who, rollout_id)


@router.post("/rollouts/{rollout_id}/abort", response_model=RolloutDetail)
def abort_rollout(rollout_id: RolloutId, store: Store, who: Admin) -> RolloutDetail:
    """End it: no door is ordered again and its doors are free for another rollout; doors
    in the middle of their update finish it. 409 once it is done or aborted."""
    return rollouts.abort_rollout(store, who, rollout_id)

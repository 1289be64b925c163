"""Is the hub up? For load balancers and monitoring, without credentials."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from hub.http.deps import Store

router = APIRouter(tags=["health"])


@router.get("/health")
def health(store: Store) -> dict[str, str]:
    """Answers without credentials: is the hub up and its store reachable?"""
    with store.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}

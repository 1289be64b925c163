"""Hub users: network admins add them, give operators their sites, change or disable them."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.http.deps import Admin, Principals, Store
from hub.services import users as accounts
from hub.services.users import UserChange, UserIn, UserOut

router = APIRouter(tags=["users"])


@router.get("/users", response_model=list[UserOut])
def users(store: Store, _: Admin) -> list[UserOut]:
    return accounts.list_users(store)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def add_user(body: UserIn, store: Store, _: Admin) -> UserOut:
    """Add a user; an operator is given the sites they run."""
    return accounts.add_user(store, body)


@router.patch("/users/{username}", response_model=UserOut)
def change_user(
    username: str, body: UserChange, store: Store, principals: Principals, _: Admin
) -> UserOut:
    """Change a user's role, sites, password or disable them; disabling or a new password
    signs them out everywhere. The last active network admin cannot be demoted or disabled."""
    changed = accounts.change_user(store, username, body)
    principals.clear()  # their role, sites or sessions changed: resolve their tokens afresh
    return changed

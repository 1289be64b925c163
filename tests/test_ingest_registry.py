"""The registry as ingest caches it: a device registered a moment ago is believed at once,
and a flood of invented names costs at most a read of the store and a few lookups a second.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from hub import db
from hub.ingest.registry import POINT_BURST, Registry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def register(engine, site: str, device: str | None = None, capacity: int | None = None) -> None:
    with engine.begin() as conn:
        if device is None:
            conn.execute(db.sites.insert().values(id=site, capacity=capacity))
        else:
            now = datetime.now(UTC)
            conn.execute(db.devices.insert().values(site=site, id=device, created_at=now))


def test_misses_read_the_store_at_most_once_a_second(engine):
    register(engine, "leipzig-ost", capacity=30)
    register(engine, "leipzig-ost", "door-1")
    clock = Clock()
    registry = Registry(engine, clock=clock)
    assert registry.has_device("leipzig-ost", "door-1")
    assert registry.site("leipzig-ost").capacity == 30  # type: ignore[union-attr]
    for i in range(1000):  # a flood of invented doors
        assert not registry.has_device("leipzig-ost", f"ghost-{i}")
    assert registry.loads == 1 and registry.lookups == POINT_BURST
    register(engine, "leipzig-ost", "door-2")
    assert not registry.has_device("leipzig-ost", "door-2")  # the flood used up the lookups
    clock.now += 1.0
    assert registry.has_device("leipzig-ost", "door-2")
    assert not registry.has_device("nowhere", "door-1") and registry.site("nowhere") is None
    assert registry.loads == 2
    clock.now += 0.5
    registry.invalidate()  # registered in this process: believed at once
    assert registry.has_device("leipzig-ost", "door-2") and registry.loads == 3


def test_a_device_registered_just_after_a_read_is_believed_at_once(engine):
    """An enrolment right after another door's message: its birth is not a dead letter."""
    register(engine, "leipzig-ost")
    register(engine, "leipzig-ost", "door-1")
    clock = Clock()
    registry = Registry(engine, clock=clock)
    assert registry.has_device("leipzig-ost", "door-1") and registry.loads == 1
    register(engine, "leipzig-ost", "door-2")
    assert registry.has_device("leipzig-ost", "door-2") and registry.lookups == 1
    assert registry.has_device("leipzig-ost", "door-2") and registry.loads == 2  # read it all


def test_a_removed_device_is_forgotten_within_the_maximum_age(engine):
    register(engine, "borna")
    register(engine, "borna", "door-1")
    clock = Clock()
    registry = Registry(engine, clock=clock)
    assert registry.has_device("borna", "door-1")
    with engine.begin() as conn:
        conn.execute(db.devices.delete())
    clock.now += 59.0
    assert registry.has_device("borna", "door-1")  # a hit does not read the store
    clock.now += 1.0
    assert not registry.has_device("borna", "door-1")


def test_a_members_reach_comes_from_grants_plans_company_and_bookings(engine):
    from hub.ingest.members import MemberReach

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(db.plans.insert(), [{"id": "all", "sites": None}, {"id": "b", "sites": ["b"]}])
        conn.execute(db.companies.insert().values(id="acme", name="Acme", sites=["c"]))
        conn.execute(
            db.members.insert(),
            [
                {"id": "anna", "blocked": False, "company_id": None},  # the whole network
                {"id": "bert", "blocked": False, "company_id": None},  # b, a grant narrowed to d
                {"id": "cleo", "blocked": False, "company_id": "acme"},  # the company's c
                {"id": "dora", "blocked": True, "company_id": None},  # booked e (still a member)
            ],
        )
        conn.execute(
            db.grants.insert(),
            [
                {"member_id": "anna", "plan_id": "all", "sites": None},
                {"member_id": "bert", "plan_id": "b", "sites": None},
                {"member_id": "bert", "plan_id": "all", "sites": ["d"]},
            ],
        )
        conn.execute(
            db.bookings.insert().values(
                member_id="dora", site_id="e", kind="day", starts_at=now, ends_at=now,
                created_at=now,
            )
        )  # fmt: skip
    clock = Clock()
    reach = MemberReach(engine, clock=clock)
    asked = {(m, s) for m in ("anna", "bert", "cleo", "dora", "nobody") for s in "abcde"}
    admitted = reach.admitted(asked)
    assert admitted == {("anna", s) for s in "abcde"} | {
        ("bert", "b"), ("bert", "d"), ("cleo", "c"), ("dora", "e")
    }  # fmt: skip
    assert reach.looked_up == 5
    # Asked again within the second: answered from memory, nobody looked up again.
    assert reach.admitted(asked) == admitted and reach.looked_up == 5
    with engine.begin() as conn:
        conn.execute(db.grants.insert().values(member_id="cleo", plan_id="all"))
    clock.now += 1.0  # cleo lacked a site: looked up again, now with her new grant
    assert ("cleo", "a") in reach.admitted({("cleo", "a"), ("anna", "a")})
    assert reach.looked_up == 6  # anna covered the site: not looked up

"""A change to a plan's sites, hours or access, or to a company's sites or plan, goes out as one
delta per affected site carrying just the affected members, and what the doors end up holding
is exactly what a full compile of each site gives."""

from __future__ import annotations

import threading

from sqlalchemy import insert, update

from hafen.acl import AccessListDelta
from hub import db
from hub.access_changes import CompanyState, PlanState, company_state, plan_state
from hub.services.companies import CompanyIn, Employment, employ, put_company
from hub.services.members import set_blocked
from hub.services.plans import PlanIn, change_plan
from hub.services.publishing import publish_member, publish_plan_change
from tests.support.network import TestHub
from tests.support.reach import SITES, Doors, run_at_once, seed


def _members(docs: list) -> set[str]:
    """The members the deltas of one site touched."""
    return {m.id for d in docs for m in d.members} | {m for d in docs for m in d.removed_members}


def _set_access(hub: TestHub, plan: str, access: str) -> PlanState:
    """Switch a plan's access in the store (the API's field is another change's); returns the
    plan as it was, for the publishing call."""
    with hub.engine.begin() as conn:
        before = plan_state(conn, plan)
        conn.execute(update(db.plans).where(db.plans.c.id == plan).values(access=access))
    assert before is not None
    return before


def test_plan_and_company_changes_are_deltas_of_just_their_members(tmp_path, network_api):
    hub, api = network_api
    seed(hub, api)
    doors = Doors(tmp_path, hub)
    doors.follow()
    doors.assert_as_compiled("seeded")
    acme = {"id": "acme", "name": "Acme", "plan": "region", "sites": ["c-hafen", "d-mark"]}

    def step(name: str, call, touched: dict[str, set[str]]) -> dict[str, AccessListDelta]:
        """Make a change; each site in ``touched`` gets exactly one delta, with just those
        members (an empty set: only a plan row), and no other site gets anything."""
        call()
        new = doors.follow()
        assert set(new) == set(touched), (name, set(new))
        for site, docs in new.items():
            assert [type(d) for d in docs] == [AccessListDelta], (name, site)
            assert _members(docs) == touched[site], (name, site)
        doors.assert_as_compiled(name)
        deltas = [d for docs in new.values() for d in docs if isinstance(d, AccessListDelta)]
        return {d.site: d for d in deltas}

    # An employer adds an allowed site: its two staff, at that site only.
    step(
        "company adds a site",
        lambda: api.put("/companies/acme", json=acme),
        {"d-mark": {"cleo", "dora"}},
    )
    acme["sites"] = ["d-mark"]
    step(
        "company drops a site",
        lambda: api.put("/companies/acme", json=acme),
        {"c-hafen": {"cleo", "dora"}},
    )
    # The plan's holder moves from a-dorf to c-hafen; its row changes wherever it is used
    # (b-stadt for ben, d-mark for acme's staff), with no member's entry there.
    region = {"id": "region", "sites": ["b-stadt", "c-hafen"]}
    step(
        "plan sites change",
        lambda: api.put("/plans/region", json=region),
        {"a-dorf": {"ben"}, "c-hafen": {"ben"}, "b-stadt": set(), "d-mark": set()},
    )
    acme["plan"] = "pendel"
    step(
        "company plan changes",
        lambda: api.put("/companies/acme", json=acme),
        {"d-mark": {"cleo", "dora"}},
    )
    # A booked plan: its own grants (dora, emil at a-dorf) and acme's staff (d-mark) go.
    before = _set_access(hub, "pendel", "booked")
    step(
        "plan becomes booked",
        lambda: publish_plan_change(hub.publisher, before),
        {"a-dorf": {"dora", "emil"}, "d-mark": {"cleo", "dora"}},
    )
    # emil books a-dorf: their booking's grant counts, booked plan or not.
    with hub.engine.begin() as conn:
        conn.execute(
            insert(db.grants).values(
                member_id="emil", source="booking", booking_id=1, sites=["a-dorf"]
            )
        )
    step(
        "a booking", lambda: publish_member(hub.publisher, "emil", {"a-dorf"}), {"a-dorf": {"emil"}}
    )
    before = _set_access(hub, "pendel", "standing")
    step(
        "plan is standing again",
        lambda: publish_plan_change(hub.publisher, before),
        {"a-dorf": {"dora", "emil"}, "d-mark": {"cleo", "dora"}},
    )
    window = {"days": ["mon", "tue"], "start": "08:00", "end": "18:00"}
    step(
        "plan hours change",
        lambda: api.put("/plans/region", json={**region, "windows": [window]}),
        {"b-stadt": set(), "c-hafen": set()},
    )
    gamma = {"id": "gamma", "name": "Gamma", "plan": "flex", "sites": list(SITES)}
    step("a company without staff", lambda: api.put("/companies/gamma", json=gamma), {})
    # The plan's sites back to the whole network: ben enters at a-dorf and d-mark.
    step(
        "plan to the whole network",
        lambda: api.put("/plans/region", json={"id": "region"}),
        {"a-dorf": {"ben"}, "d-mark": {"ben"}, "b-stadt": set(), "c-hafen": set()},
    )
    # anna, listed everywhere by flex, also takes pendel, which then gains b-stadt. Each
    # entry there comes with its cards, anna's too: the door has them unless a change not
    # yet sent listed her there (a delta never leans on what a door may not have).
    assert api.post("/members/anna/grants", json={"plan": "pendel"}).status_code == 201
    doors.follow()
    sent = step(
        "plan gains a site where a holder is listed already",
        lambda: api.put("/plans/pendel", json={"id": "pendel", "sites": ["a-dorf", "b-stadt"]}),
        {"b-stadt": {"anna", "dora", "emil"}, "a-dorf": set(), "d-mark": set()},
    )
    assert {card.member for card in sent["b-stadt"].cards} == {"anna", "dora", "emil"}


def test_changes_at_once_keep_each_sites_versions_in_one_chain(tmp_path, network_api):
    """Companies, plans and members changing in parallel threads: every site's versions
    follow one another (each delta on the version before it, else the door refuses it) and
    the lists end as a full compile."""
    hub, api = network_api
    seed(hub, api)
    doors = Doors(tmp_path, hub)
    doors.follow()
    engine, publisher = hub.engine, hub.publisher
    changes = [
        lambda: put_company(
            engine, publisher, CompanyIn(id="acme", name="A", plan="flex", sites=list(SITES))
        ),
        lambda: put_company(
            engine, publisher, CompanyIn(id="beta", name="B", sites=["a-dorf", "c-hafen"])
        ),
        lambda: change_plan(engine, publisher, PlanIn(id="region")),
        lambda: change_plan(engine, publisher, PlanIn(id="pendel", sites=["b-stadt", "d-mark"])),
        lambda: set_blocked(engine, publisher, "anna", True),
        lambda: employ(engine, publisher, "emil", Employment(company="beta")),
    ]
    run_at_once(changes)
    for site, docs in doors.follow().items():
        versions = [d.version for d in docs]
        assert versions == list(range(versions[0], versions[0] + len(versions))), site
    doors.assert_as_compiled("after the parallel changes")


def test_a_change_reads_what_it_replaces_after_a_concurrent_one_commits(engine):
    """The state a change publishes against is read under its own write lock: a change that
    another request made meanwhile (committed after this one began) is what it replaces,
    else the doors would keep that change's entries at the sites only it touched."""
    with engine.begin() as conn:
        conn.execute(insert(db.sites), [{"id": site} for site in SITES])
        conn.execute(insert(db.companies).values(id="acme", name="Acme", sites=["a-dorf"]))
    first = engine.connect()
    first.begin()
    first.execute(
        update(db.companies).where(db.companies.c.id == "acme").values(sites=["a-dorf", "b-stadt"])
    )
    seen: list[CompanyState | None] = []

    def second_change() -> None:
        with engine.begin() as conn:
            seen.append(company_state(conn, "acme", lock=True))

    second = threading.Thread(target=second_change)
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waits for the first change to commit
    first.commit()
    first.close()
    second.join(10)
    assert seen == [CompanyState("acme", None, ["a-dorf", "b-stadt"])]

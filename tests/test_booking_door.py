"""A member's own booking reaches the door through a real mosquitto: their card opens that
site's door in the booking's time, not before it and nowhere else, also while the site is
cut off from the hub (the door decides from the list it holds). On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.support.booking import member_user, set_site, today
from tests.support.network import acl_version, connected_edge
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

MIA = "04A1B2C3D4E5F6"
#: The second door's own pins: both doors run in this process on the same mock pins.
BORNA_PINS = {
    "strike": {"pin": 5},
    "contact": {"pin": 6},
    "exit_button": {"pin": 13},
    "led": {"pin": 19},
    "buzzer": {"pin": 26},
}


def decisions(hub, site: str) -> list[dict]:
    return [e.data for e in hub.events(site) if e.kind == "door.decision"]


def tap(card, hub, site: str, again: bool = True) -> dict:
    """Tap the card and wait for the door's decision to reach the hub; ``again``: taken
    away first, long enough for the reader to notice (two empty polls)."""
    seen = len(decisions(hub, site))
    if again:
        time.sleep(2.5)
    card.present(bytes.fromhex(MIA))
    assert wait_for(lambda: len(decisions(hub, site)) > seen, 20)
    return decisions(hub, site)[-1]


def test_a_members_booking_opens_that_sites_door_in_its_time_only(tmp_path, network_api, mock_pins):
    hub, api = network_api
    admin = add_sites(api)
    set_site(api.engine, "leipzig-ost", desks=5)
    # Mia's plan lets her book anywhere, 8 days a month, and come in only where and when she
    # booked. (Until booked plans give no standing access at all, its own hours, three days
    # from today at 03:00, keep the plan from letting her in while this test runs.)
    weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today().weekday() + 3) % 7]
    plan = {
        "id": "flex-8",
        "days_per_month": 8,
        "access": "booked",
        "windows": [{"days": [weekday], "start": "03:00", "end": "03:15"}],
    }
    assert api.post("/plans", json=plan).status_code == 201
    mia = member_user(api, "mia", admin, plan="flex-8")
    assert api.post("/members/mia/cards", json={"uid": MIA}).status_code == 201
    leipzig_dir, borna_dir = tmp_path / "leipzig", tmp_path / "borna"
    leipzig_dir.mkdir()
    borna_dir.mkdir()
    with (
        connected_edge(leipzig_dir, hub, site="leipzig-ost") as (leipzig, leipzig_card),
        connected_edge(borna_dir, hub, site="borna", **BORNA_PINS) as (_borna, borna_card),
    ):
        assert wait_for(lambda: acl_version(leipzig) == hub.publisher.newest("leipzig-ost"), 10)
        assert tap(leipzig_card, hub, "leipzig-ost", again=False)["allowed"] is False
        version = acl_version(leipzig)  # each change from here on is one more
        tomorrow = {"site": "leipzig-ost", "kind": "desk", "day": str(today() + timedelta(1))}
        assert api.post("/me/bookings", json=tomorrow, headers=mia).status_code == 201
        assert wait_for(lambda: acl_version(leipzig) == version + 1, 10)
        assert tap(leipzig_card, hub, "leipzig-ost")["allowed"] is False  # not yet
        version = acl_version(leipzig)
        now = {"site": "leipzig-ost", "kind": "desk", "day": str(today()), "part": "day"}
        booked = api.post("/me/bookings", json=now, headers=mia)
        assert booked.status_code == 201, booked.text
        assert wait_for(lambda: acl_version(leipzig) == version + 1, 10)
        # The site loses the hub: the door still lets her in, from the list it holds.
        hub.broker.stop()
        time.sleep(2.5)
        assert leipzig_card.present(bytes.fromhex(MIA)) is not None
        hub.broker.start()
        assert wait_for(lambda: len(decisions(hub, "leipzig-ost")) == 3, 30)
        offline = decisions(hub, "leipzig-ost")[2]
        assert offline["allowed"] is True and offline["member"] == "mia"
        # Nowhere else: Borna's door does not let her in.
        assert tap(borna_card, hub, "borna", again=False)["allowed"] is False
        # Cancelled (by the staff: it has begun), the booking lets her in no more.
        version = acl_version(leipzig)
        assert api.delete(f"/bookings/{booked.json()['id']}").json()["cancelled"] is True
        assert wait_for(lambda: acl_version(leipzig) == version + 1, 10)
        assert tap(leipzig_card, hub, "leipzig-ost")["allowed"] is False

"""The four kinds of simulated day, drawn from a seed: who comes, when, and how.

quiet: 3-8 members, a guest now and then. typical: 10-20 members, guests, meetings, couriers.
event: a few members by day, then 30-45 people arriving within minutes for an evening talk,
the door propped while they come and go. still: 6 people at their desks for hours, hardly
moving. Every kind may have a cleaner and people staying past closing (``Behaviours``).
"""

from __future__ import annotations

from sim.people_plans import (
    MIN,
    Behaviours,
    Episode,
    H,
    Plan,
    Visit,
    _clock,
    cleaning_stay,
    desk_stay,
    event_stay,
    meeting_stay,
)


def plan_day(kind: str, seed: int, b: Behaviours) -> Plan:
    plan = Plan(f"{seed}:{kind}")
    if kind == "quiet":
        _members(plan, b, plan.rng("count").randint(3, 8), meetings=0.05)
        _guests(plan, b, (0, 1))
        _couriers(plan, b, (1, 2))
        _late(plan, b, (0, 1))
    elif kind == "typical":
        _members(plan, b, plan.rng("count").randint(10, 20), meetings=0.15)
        _guests(plan, b, (1, 3))
        _couriers(plan, b, (2, 5))
        _late(plan, b, (1, 2))
    elif kind == "still":
        _members(plan, b, 6, still=True)
        _couriers(plan, b, (0, 1))
        _late(plan, b, (0, 1))
    elif kind == "event":
        _members(plan, b, plan.rng("count").randint(4, 8), meetings=0.1, leave_mean=16.5)
        _couriers(plan, b, (1, 2), window=(16.3, 17.8))
        _event(plan, b)
    else:
        raise ValueError(f"unknown kind of day {kind!r}")
    _cleaner(plan, b, morning_only=kind == "event")
    return plan


def _how_out(handle: bool, b: Behaviours) -> str:
    return "handle" if handle and b.handle_exits else "button"


def _members(
    plan: Plan,
    b: Behaviours,
    n: int,
    still: bool = False,
    meetings: float = 0.0,
    leave_mean: float = 17.3,
) -> None:
    """Members coming by day; some go out for lunch and come back (a second visit)."""
    rng = plan.rng("members")
    for i in range(n):
        if still:
            arrive = _clock(rng, 8.7, 0.5, 7.5, 10)
            leave = max(arrive + H, _clock(rng, 17.5, 0.6, 16, 19.5))
        else:
            arrive = _clock(rng, 9.2, 1.1, 7.3, 14)
            leave = max(arrive + H, _clock(rng, leave_mean, 1.4, 11.5, 21.6))
        lunch = not still and rng.random() < 0.3 and arrive < 11.5 * H and leave > 14 * H
        out = _clock(rng, 12.3, 0.3, 11.6, 13)
        back = out + rng.uniform(30, 60) * MIN
        join_in, join_out, handle = rng.random() < 0.25, rng.random() < 0.15, rng.random() < 0.1
        how_out = _how_out(handle, b)
        stay = desk_stay(plan.rng(f"stay:m{i}"), still, meetings)
        if lunch:
            after = desk_stay(plan.rng(f"stay:m{i}b"), still, meetings)
            plan.visits.append(Visit(f"m{i}", "member", arrive, out, "tap", how_out, stay, join_in))
            plan.visits.append(
                Visit(f"m{i}b", "member", back, leave, "tap", how_out, after, False, join_out)
            )
        else:
            plan.visits.append(
                Visit(f"m{i}", "member", arrive, leave, "tap", how_out, stay, join_in, join_out)
            )


def _guests(plan: Plan, b: Behaviours, count: tuple[int, int]) -> None:
    """Guests for a meeting, let in from inside by their host (or with a visitor card)."""
    rng = plan.rng("guests")
    for i in range(rng.randint(*count)):
        at, length, handle = rng.uniform(10, 16) * H, rng.uniform(30, 120) * MIN, rng.random() < 0.5
        if plan.present(at):
            how_in = "let_in" if b.inside_openings else "tap"
            plan.visits.append(
                Visit(f"g{i}", "guest", at, at + length, how_in, _how_out(handle, b), meeting_stay)
            )


def _couriers(
    plan: Plan, b: Behaviours, count: tuple[int, int], window: tuple[float, float] = (9.5, 17)
) -> None:
    """A courier or a parcel at the door: opened from inside, held while signing, nobody leaves."""
    rng = plan.rng("couriers")
    for _ in range(rng.randint(*count)):
        at, held = rng.uniform(*window) * H, rng.uniform(8, 40)
        if b.inside_openings and plan.present(at):
            plan.other_episodes.append(Episode(at, held, inside=True, why="courier"))
            plan.extra_movements += [("coworking", at - 15), ("coworking", at + held + 5)]


def _late(plan: Plan, b: Behaviours, count: tuple[int, int]) -> None:
    """The last members to leave stay past closing (22:00) when late stays are on."""
    rng = plan.rng("late")
    k = rng.randint(*count)
    times = sorted((rng.uniform(22.1, 23.4) * H for _ in range(k)), reverse=True)
    if not b.late_stays:
        return
    members = sorted((v for v in plan.visits if v.role == "member"), key=lambda v: -v.leave)
    for visit, t in zip(members, times, strict=False):
        visit.leave, visit.join_out = t, False


def _cleaner(plan: Plan, b: Behaviours, morning_only: bool) -> None:
    """A cleaner with a key, before opening or after closing: no tap, rarely the button."""
    rng = plan.rng("cleaner")
    morning = rng.random() < 0.5 or morning_only
    start = rng.uniform(6.0, 6.3) * H if morning else rng.uniform(22.2, 22.6) * H
    length, handle = rng.uniform(45, 75) * MIN, rng.random() < 0.7
    if b.cleaners:
        how_out = _how_out(handle, b)
        plan.visits.append(
            Visit("c0", "cleaner", start, start + length, "key", how_out, cleaning_stay)
        )


def _event(plan: Plan, b: Behaviours) -> None:
    """An evening talk: a host, 30-45 people arriving in minutes, leaving in a stream."""
    rng = plan.rng("event")
    n, start = rng.randint(30, 45), rng.uniform(18.0, 18.5) * H
    talk0 = start + rng.uniform(5, 15) * MIN
    talk = (talk0, talk0 + rng.uniform(45, 75) * MIN)
    end = start + rng.uniform(2.5, 3.0) * H
    prop_in, prop_out = (start - 20 * MIN, start + 10 * MIN), (end, end + 15 * MIN)
    host_arrive = rng.uniform(15, 16) * H
    leaves: list[float] = []
    people: list[tuple[float, bool, bool, bool]] = []
    for _ in range(n):
        early = rng.random() < 0.85
        soon = min(max(rng.gauss(start - 6 * MIN, 5 * MIN), start - 25 * MIN), start + 8 * MIN)
        arrive = soon if early else rng.uniform(start + 8 * MIN, start + 40 * MIN)
        leaves_early = rng.random() < 0.15
        in_stream = min(max(rng.gauss(end + 8 * MIN, 6 * MIN), end), end + 30 * MIN)
        leave = rng.uniform(start + H, end) if leaves_early else in_stream
        draws = (rng.random() < 0.35, rng.random() < 0.5, rng.random() < 0.2)
        leaves.append(min(leave, 21.95 * H))
        people.append((arrive, *draws))
    late = plan.rng("late")
    lingerers = late.randint(2, 5)
    late_times = [late.uniform(22.05, 22.8) * H for _ in range(lingerers)]
    host_leave = late.uniform(22.8, 23.0) * H if b.late_stays else 21.97 * H
    if b.late_stays:
        stream = sorted(range(n), key=lambda i: -leaves[i])
        for i, t in zip(stream, late_times, strict=False):
            leaves[i] = t
    propped = b.propped_door
    for i, (leave, (arrive, join_in, join_out, handle)) in enumerate(
        zip(leaves, people, strict=True)
    ):
        walk_in = propped and prop_in[0] <= arrive <= prop_in[1]
        walk_out = propped and prop_out[0] <= leave <= prop_out[1]
        how_out = "walk" if walk_out else _how_out(handle, b)
        plan.visits.append(
            Visit(
                f"a{i}",
                "attendee",
                arrive,
                leave,
                "walk" if walk_in else "tap",
                how_out,
                event_stay(talk),
                join_in,
                join_out and leave < 22 * H,
            )
        )
    host = desk_stay(plan.rng("stay:host"), still=False, meetings=0.0)
    plan.visits.append(Visit("h0", "member", host_arrive, host_leave, "tap", "button", host))
    if propped:  # the host props the door from inside, and closes it again
        for a, z in (prop_in, prop_out):
            plan.other_episodes.append(Episode(a, z - a, inside=True, why="propped"))

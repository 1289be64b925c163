"""What a door opening may have been: the people who went through, as probabilities.

The door is locked from outside; from inside it opens freely. So an opening is read from
what came just before it (an allowed tap outside, the exit button inside, a people counter's
beams if there is one) and from how long the door stood open. Each reading below is a table
of what the opening may have been, and the estimator keeps all of them, weighted, until the
rooms' sensors decide (``edge.agent.headcount``). Nothing here sets a count.

=============================  ==========================================================
what came before the opening   what it may have been
=============================  ==========================================================
``t`` allowed taps             ``t`` or more people in; more the longer the door stood open
                               (a group on one tap); now and then one fewer (a second tap by
                               the same person)
the exit button                one or more out, by the time open; now and then nobody (the
                               button pressed to let a visitor in: one in)
neither, someone inside        one or more out by the handle (short), a visitor let in, or
                               nobody through (a courier, a parcel: the door held long)
neither, nobody inside         someone with a key (a cleaner): in
the counter's beams            what they counted, trusted far above all of the above
=============================  ==========================================================

How long a door stands open for ``k`` people follows ``PassageTiming``: about
``first_seconds`` for one, ``each_more_seconds`` for each further person, with a spread; a
door held for any other reason (a chat in the doorway) is the heavy tail. A door open longer
than ``propped_seconds`` is propped: people may come and go unseen, and the estimator lets
the count wander while it stays open (``propped_minute``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: How many people one opening may let through, before its timing is read: mostly one,
#: sometimes a pair, rarely a small group.
GROUP_PRIOR = (0.0, 0.72, 0.17, 0.07, 0.03, 0.01)
#: Of the openings from inside without the button: out by the handle, a visitor let in,
#: nobody through (a parcel, a courier, a look outside).
INSIDE_WAYS = {"out": 0.5, "in": 0.2, "nobody": 0.3}
#: An opening without tap or button is from outside with a key this often when someone is
#: inside; the only way when nobody is.
KEY_SHARE = 0.05
#: The exit button with nobody inside to press it: a count that is wrong, or a faulty wire.
BUTTON_WITH_NOBODY = 0.02
#: The exit button pressed to let a visitor in, or pressed with nobody then going out.
BUTTON_LET_IN, BUTTON_NOBODY = 0.05, 0.05
#: Two taps for one person (the first did not seem to work).
SECOND_TAP = 0.15
#: The most taps one opening is read with (the largest group in ``GROUP_PRIOR``).
MOST_TAPS = len(GROUP_PRIOR) - 1
#: A people counter's passage: right, missed, or a second person beside the first.
COUNTER_RIGHT, COUNTER_MISSED, COUNTER_PAIR = 0.95, 0.03, 0.02


@dataclass(frozen=True)
class PassageTiming:
    """How long a door stands open for its people (a door with a closer)."""

    first_seconds: float = 4.5
    each_more_seconds: float = 2.0
    spread_seconds: float = 1.5
    #: Openings held for another reason: a chat in the doorway, a door hard to close.
    held_share: float = 0.1
    held_up_to: float = 60.0
    #: Open longer than this, the door is propped.
    propped_seconds: float = 45.0

    def likelihood(self, seconds: float, people: int) -> float:
        """How likely an opening of ``seconds`` is for ``people`` going through (0: nobody)."""
        held = self.held_share / self.held_up_to
        if people == 0:  # nobody passed: the door stood open for a reason of its own
            return 1 / self.held_up_to
        expected = self.first_seconds + self.each_more_seconds * (people - 1)
        # Longer than expected is likelier than shorter: people hold the door and talk, while
        # a door closer shuts it no faster than it can.
        spread = self.spread_seconds * (0.7 if seconds < expected else 1.5 + 0.3 * people)
        z = (seconds - expected) / spread
        normal = math.exp(-0.5 * z * z) / (spread * math.sqrt(2 * math.pi))
        return (1 - self.held_share) * normal + held


def group_sizes(
    timing: PassageTiming, seconds: float, at_least: int = 1
) -> list[tuple[int, float]]:
    """Probabilities of how many went through an opening of ``seconds`` (at least ``at_least``)."""
    seconds = min(seconds, timing.propped_seconds)
    sizes = [
        (k, prior * timing.likelihood(seconds, k))
        for k, prior in enumerate(GROUP_PRIOR)
        if k >= max(at_least, 1) and prior > 0
    ]
    if at_least > len(GROUP_PRIOR) - 1:  # more taps than the prior's largest group
        sizes = [(at_least, 1.0)]
    return _normalised(sizes)


def entry(timing: PassageTiming, seconds: float, taps: int) -> list[tuple[int, float]]:
    """An opening after ``taps`` allowed taps: changes in the count, with probabilities."""
    changes: dict[int, float] = {}
    for took, share in (
        ((taps, 1 - SECOND_TAP), (taps - 1, SECOND_TAP)) if taps > 1 else ((taps, 1.0),)
    ):
        for k, pk in group_sizes(timing, seconds, took):
            changes[k] = changes.get(k, 0.0) + share * pk
    return sorted(changes.items())


def _passing(timing: PassageTiming, seconds: float) -> list[tuple[int, float]]:
    """(people, prior x how well ``seconds`` fits them) for one or more going through.
    Unnormalised on purpose: the readings below compare these across ways and counts."""
    seconds = min(seconds, timing.propped_seconds)
    return [(k, p * timing.likelihood(seconds, k)) for k, p in enumerate(GROUP_PRIOR) if p > 0]


def exit_by_button(timing: PassageTiming, seconds: float, n: int) -> Iterable[tuple[int, float]]:
    """An opening after the exit button, from a count of ``n``: weights are comparable
    across counts, so a press with nobody inside to make it pulls the belief up."""
    passing = _passing(timing, seconds)
    let_in = [(k, BUTTON_LET_IN * w) for k, w in passing]
    if n == 0:
        return [(k, BUTTON_WITH_NOBODY * w) for k, w in let_in]
    out = [(-k, (1 - BUTTON_LET_IN - BUTTON_NOBODY) * w) for k, w in passing]
    nobody = BUTTON_NOBODY * timing.likelihood(min(seconds, timing.propped_seconds), 0)
    return [*out, *let_in, (0, nobody)]


def from_inside(timing: PassageTiming, seconds: float, n: int) -> Iterable[tuple[int, float]]:
    """An opening with neither tap nor button, from a count of ``n``: from inside when
    someone is there, else (and now and then anyway) from outside with a key. Weights are
    comparable across counts: such an opening at an empty space is rare."""
    passing = _passing(timing, seconds)
    key = [(k, KEY_SHARE * w) for k, w in passing]
    if n == 0:
        return key
    inside = 1 - KEY_SHARE
    changes = [(-k, inside * INSIDE_WAYS["out"] * w) for k, w in passing]
    changes += [(k, inside * INSIDE_WAYS["in"] * w) for k, w in passing]
    nobody = timing.likelihood(min(seconds, timing.propped_seconds), 0)
    changes.append((0, inside * INSIDE_WAYS["nobody"] * nobody))
    return changes + key


def counted(ins: int, outs: int) -> list[tuple[int, float]]:
    """A people counter's passages across one opening (or on their own)."""
    changes: dict[int, float] = {}
    for direction, passes in ((1, ins), (-1, outs)):
        for _ in range(passes):
            step = {direction: COUNTER_RIGHT, 0: COUNTER_MISSED, 2 * direction: COUNTER_PAIR}
            changes = _convolve(changes, step) if changes else dict(step)
    return sorted(changes.items()) if changes else [(0, 1.0)]


#: The longest stretch of a propped door one step lets the count wander: a door propped
#: while the agent was not ticking (asleep, its clock jumped) spreads the belief no further.
PROPPED_STEP_MINUTES = 60.0


def propped_minute(minutes: float, rate: float) -> list[tuple[int, float]]:
    """A propped door for ``minutes``: people in and out unseen, each at ``rate`` a minute
    (a Skellam: the difference of two Poisson counts)."""
    mean = rate * min(max(minutes, 0.0), PROPPED_STEP_MINUTES)
    poisson, pk = [], math.exp(-mean)
    for k in range(_poisson_top(mean)):  # by recurrence: no factorials, no overflow
        poisson.append(pk)
        pk *= mean / (k + 1)
    changes: dict[int, float] = {}
    for i, pi in enumerate(poisson):
        for o, po in enumerate(poisson):
            changes[i - o] = changes.get(i - o, 0.0) + pi * po
    return sorted(changes.items())


def _poisson_top(mean: float) -> int:
    return max(3, math.ceil(mean + 5 * math.sqrt(mean) + 2))


def _convolve(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for x, px in a.items():
        for y, py in b.items():
            out[x + y] = out.get(x + y, 0.0) + px * py
    return out


def _normalised(pairs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    total = sum(p for _, p in pairs)
    return [(k, p / total) for k, p in pairs] if total > 0 else pairs

"""The door's parts: the strike is pulsed, the LED flashed, the buzzer sounded, the contact
and the exit button read (and the button pressed, when a technician is there to press it).

The outputs cannot be sensed back: the check passes when the pin followed, and the technician
sees the LED and hears the strike and the buzzer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge.drivers.door import DoorContact, ExitButton, Signals, Strike
from edge.selftest.results import CheckResult, failed, passed, skipped

#: How long the strike is released (the technician is warned first).
STRIKE_PULSE_SECONDS = 1.0
#: Flashes and beeps: the pattern of a refused card.
SIGNAL_TIMES = 3
SIGNAL_SECONDS = 0.1

Say = Callable[[str], None]


def check_strike(strike: Strike, seconds: float = STRIKE_PULSE_SECONDS) -> CheckResult:
    """Release the strike for ``seconds`` and lock it again."""
    strike.unlock()
    released = strike.is_unlocked
    time.sleep(seconds)
    strike.lock()
    if not released or strike.is_unlocked:
        return failed("strike", "the relay's pin did not follow")
    return passed("strike", f"released for {seconds:g} s, then locked")


def check_led(signals: Signals, times: int = SIGNAL_TIMES) -> CheckResult:
    if not signals.flash(times, SIGNAL_SECONDS, background=False):
        return skipped("led", "no LED in [door]")
    return passed("led", f"flashed {times} times")


def check_buzzer(signals: Signals, times: int = SIGNAL_TIMES) -> CheckResult:
    if not signals.beep(times, SIGNAL_SECONDS, background=False):
        return skipped("buzzer", "no buzzer in [door]")
    return passed("buzzer", f"beeped {times} times")


def check_contact(contact: DoorContact) -> CheckResult:
    """The contact's reading now: whether it is right only the technician, at the door, knows."""
    return passed("contact", "the door is open" if contact.is_open else "the door is shut")


def check_exit_button(
    button: ExitButton, pressed: threading.Event, wait: float | None, say: Say
) -> CheckResult:
    """The button's state now and, with a technician there (``wait`` seconds to press it, None:
    nobody to ask), a press; ``pressed`` is set by the button's callback."""
    now = "held down" if button.is_pressed else "not pressed"
    if wait is None:
        return passed("exit_button", f"{now} (no one asked to press it: not interactive)")
    pressed.clear()
    say(f"Press the exit button now ({wait:g} s) ...")
    if pressed.wait(wait):
        return passed("exit_button", "press seen")
    return failed("exit_button", f"no press within {wait:g} s ({now})")

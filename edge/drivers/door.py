"""The door's hardware on gpiozero: strike relay, reed contact, exit button, LED and buzzer.

Each part is a small class around one gpiozero device and takes plain values (a pin, its
polarity, a debounce time), as gpiozero's devices do. ``DoorHardware`` holds the parts of one
door; ``DoorHardware.from_settings`` builds them from ``DoorHardwareSettings``
(``edge.drivers.door_settings``, the ``[door]`` section's pins). Nothing here decides anything:
the agent's door logic does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from gpiozero import LED, Button, Buzzer, DigitalInputDevice, OutputDevice

from edge.drivers.door_settings import (
    ContactPin,
    DoorHardwareSettings,
    FailMode,
    InputPin,
    OutputPin,
)

Callback = Callable[[], None]
#: A pin as gpiozero takes it: a BCM number, or a name such as "GPIO17".
Pin = int | str


class Strike:
    """The strike relay, wired so that the de-energised relay is the door's fail state.

    Fail-secure: energised means unlocked, so a dead Pi leaves the door locked. Fail-safe (fire
    exits): energised means locked, so a dead Pi, a lost pin or a stopped agent unlocks it.
    """

    def __init__(
        self, pin: Pin, *, active_high: bool = True, fail_mode: FailMode = "secure"
    ) -> None:
        self._energise_to_unlock = fail_mode == "secure"
        self._relay = OutputDevice(
            pin, active_high=active_high, initial_value=not self._energise_to_unlock
        )

    @classmethod
    def from_settings(cls, settings: OutputPin, fail_mode: FailMode) -> Strike:
        return cls(settings.pin, active_high=settings.active_high, fail_mode=fail_mode)

    @property
    def is_unlocked(self) -> bool:
        return bool(self._relay.value) == self._energise_to_unlock

    def unlock(self) -> None:
        self._relay.value = self._energise_to_unlock

    def lock(self) -> None:
        self._relay.value = not self._energise_to_unlock

    def release(self) -> None:
        """De-energise the relay (the configured fail state) and give the pin back."""
        self._relay.off()
        self._relay.close()


class DoorContact:
    """The reed contact: tells whether the door leaf is open, and calls back on each change.

    ``closed_level`` is the pin's level while the door is shut.
    """

    def __init__(
        self,
        pin: Pin,
        on_open: Callback,
        on_close: Callback,
        *,
        pull_up: bool = True,
        bounce_seconds: float | None = 0.02,
        closed_level: Literal["low", "high"] = "low",
    ) -> None:
        self._input = DigitalInputDevice(pin, pull_up=pull_up, bounce_time=bounce_seconds)
        active_level = "low" if pull_up else "high"
        closed_when_active = closed_level == active_level
        self._input.when_activated = on_close if closed_when_active else on_open
        self._input.when_deactivated = on_open if closed_when_active else on_close
        self._closed_when_active = closed_when_active

    @classmethod
    def from_settings(
        cls, settings: ContactPin, on_open: Callback, on_close: Callback
    ) -> DoorContact:
        return cls(
            settings.pin,
            on_open,
            on_close,
            pull_up=settings.pull_up,
            bounce_seconds=settings.bounce_seconds,
            closed_level=settings.closed_level,
        )

    @property
    def is_open(self) -> bool:
        return bool(self._input.value) != self._closed_when_active

    def close(self) -> None:
        self._input.close()


class ExitButton:
    """The request-to-exit button on the inside of the door."""

    def __init__(
        self,
        pin: Pin,
        on_press: Callback,
        *,
        pull_up: bool = True,
        bounce_seconds: float | None = 0.02,
    ) -> None:
        self._button = Button(pin, pull_up=pull_up, bounce_time=bounce_seconds)
        self._button.when_pressed = on_press

    @classmethod
    def from_settings(cls, settings: InputPin, on_press: Callback) -> ExitButton:
        return cls(
            settings.pin, on_press, pull_up=settings.pull_up, bounce_seconds=settings.bounce_seconds
        )

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def close(self) -> None:
        self._button.close()


class Signals:
    """Status LED and buzzer patterns a member learns to read at the door (either may be absent)."""

    def __init__(
        self,
        led: Pin | None = None,
        buzzer: Pin | None = None,
        *,
        led_active_high: bool = True,
        buzzer_active_high: bool = True,
    ) -> None:
        self._led = LED(led, active_high=led_active_high) if led is not None else None
        self._buzzer = (
            Buzzer(buzzer, active_high=buzzer_active_high) if buzzer is not None else None
        )

    @classmethod
    def from_settings(cls, led: OutputPin | None, buzzer: OutputPin | None) -> Signals:
        return cls(
            led.pin if led else None,
            buzzer.pin if buzzer else None,
            led_active_high=led.active_high if led else True,
            buzzer_active_high=buzzer.active_high if buzzer else True,
        )

    def allowed(self, open_seconds: float) -> None:
        """Steady light while the door is open for the member, one short beep."""
        if self._led:
            self._led.blink(on_time=open_seconds, off_time=0, n=1)
        if self._buzzer:
            self._buzzer.beep(on_time=0.15, off_time=0, n=1)

    def denied(self) -> None:
        """Three quick flashes and beeps."""
        if self._led:
            self._led.blink(on_time=0.1, off_time=0.1, n=3)
        if self._buzzer:
            self._buzzer.beep(on_time=0.1, off_time=0.1, n=3)

    def alarm(self) -> None:
        """A long beep: the door is forced or held open."""
        if self._buzzer:
            self._buzzer.beep(on_time=2.0, off_time=0, n=1)

    def flash(self, times: int, seconds: float = 0.15, background: bool = True) -> bool:
        """Flash the LED ``times`` times (a technician's self-test); False if there is none."""
        if self._led is None:
            return False
        self._led.blink(on_time=seconds, off_time=seconds, n=times, background=background)
        return True

    def beep(self, times: int, seconds: float = 0.15, background: bool = True) -> bool:
        """Beep ``times`` times (a technician's self-test); False if there is no buzzer."""
        if self._buzzer is None:
            return False
        self._buzzer.beep(on_time=seconds, off_time=seconds, n=times, background=background)
        return True

    def fault(self, active: bool) -> None:
        """A slow blink while a part (the reader) is out of order."""
        if self._led:
            if active:
                self._led.blink(on_time=0.2, off_time=1.8)
            else:
                self._led.off()

    def close(self) -> None:
        for device in (self._led, self._buzzer):
            if device:
                device.close()


class DoorHardware:
    """All parts of one door; callbacks reach the agent's door logic."""

    def __init__(
        self,
        strike: Strike,
        contact: DoorContact | None = None,
        exit_button: ExitButton | None = None,
        signals: Signals | None = None,
    ) -> None:
        self.strike = strike
        self.contact = contact
        self.exit_button = exit_button
        self.signals = signals if signals is not None else Signals()

    @classmethod
    def from_settings(
        cls,
        settings: DoorHardwareSettings,
        on_open: Callback,
        on_close: Callback,
        on_exit: Callback,
    ) -> DoorHardware:
        """Every part the settings wire, with the door logic's callbacks."""
        return cls(
            Strike.from_settings(settings.strike, settings.fail_mode),
            DoorContact.from_settings(settings.contact, on_open, on_close)
            if settings.contact
            else None,
            ExitButton.from_settings(settings.exit_button, on_exit)
            if settings.exit_button
            else None,
            Signals.from_settings(settings.led, settings.buzzer),
        )

    @property
    def door_open(self) -> bool:
        return self.contact.is_open if self.contact else False

    def close(self) -> None:
        """Leave the door in its fail state and release every pin."""
        self.strike.release()
        for part in (self.contact, self.exit_button, self.signals):
            if part:
                part.close()

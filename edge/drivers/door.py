"""The door's hardware on gpiozero: strike relay, reed contact, exit button, LED and buzzer.

Each part is a small class around one gpiozero device; ``DoorHardware`` composes them from the
door section of the config. Nothing here decides anything: the agent's door logic does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from gpiozero import LED, Button, Buzzer, DigitalInputDevice, OutputDevice

from edge.agent.config import ContactPin, DoorConfig, InputPin, OutputPin

Callback = Callable[[], None]


class Strike:
    """The strike relay, wired so that the de-energised relay is the door's fail state.

    Fail-secure: energised means unlocked, so a dead Pi leaves the door locked. Fail-safe (fire
    exits): energised means locked, so a dead Pi, a lost pin or a stopped agent unlocks it.
    """

    def __init__(self, cfg: OutputPin, fail_mode: Literal["secure", "safe"]) -> None:
        self._energise_to_unlock = fail_mode == "secure"
        self._relay = OutputDevice(
            cfg.pin, active_high=cfg.active_high, initial_value=not self._energise_to_unlock
        )

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
    """The reed contact: tells whether the door leaf is open, and calls back on each change."""

    def __init__(self, cfg: ContactPin, on_open: Callback, on_close: Callback) -> None:
        self._input = DigitalInputDevice(
            cfg.pin, pull_up=cfg.pull_up, bounce_time=cfg.bounce_seconds
        )
        active_level = "low" if cfg.pull_up else "high"
        closed_when_active = cfg.closed_level == active_level
        self._input.when_activated = on_close if closed_when_active else on_open
        self._input.when_deactivated = on_open if closed_when_active else on_close
        self._closed_when_active = closed_when_active

    @property
    def is_open(self) -> bool:
        return bool(self._input.value) != self._closed_when_active

    def close(self) -> None:
        self._input.close()


class ExitButton:
    """The request-to-exit button on the inside of the door."""

    def __init__(self, cfg: InputPin, on_press: Callback) -> None:
        self._button = Button(cfg.pin, pull_up=cfg.pull_up, bounce_time=cfg.bounce_seconds)
        self._button.when_pressed = on_press

    def close(self) -> None:
        self._button.close()


class Signals:
    """Status LED and buzzer patterns a member learns to read at the door."""

    def __init__(self, led: OutputPin | None, buzzer: OutputPin | None) -> None:
        self._led = LED(led.pin, active_high=led.active_high) if led else None
        self._buzzer = Buzzer(buzzer.pin, active_high=buzzer.active_high) if buzzer else None

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
    """All parts of one door, built from the config; callbacks reach the agent's door logic."""

    def __init__(
        self,
        cfg: DoorConfig,
        on_open: Callback,
        on_close: Callback,
        on_exit: Callback,
    ) -> None:
        self.strike = Strike(cfg.strike, cfg.fail_mode)
        self.contact = DoorContact(cfg.contact, on_open, on_close) if cfg.contact else None
        self.exit_button = ExitButton(cfg.exit_button, on_exit) if cfg.exit_button else None
        self.signals = Signals(cfg.led, cfg.buzzer)

    @property
    def door_open(self) -> bool:
        return self.contact.is_open if self.contact else False

    def close(self) -> None:
        """Leave the door in its fail state and release every pin."""
        self.strike.release()
        for part in (self.contact, self.exit_button, self.signals):
            if part:
                part.close()

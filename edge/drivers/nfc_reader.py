"""The NFC reader on nfcpy: turns polling into taps, and survives the reader going away.

A card held on the reader is one tap; it must be taken away (``removal_polls`` empty polls in a
row) before it counts again. After reading a Type A card the reader sends HLTA, as ISO 14443-3
readers do, so the card goes quiet until it leaves the field. The reader is reopened with
exponential backoff when it fails; faults are reported, never raised. ``NfcReader`` takes its
nfcpy path and polling values; ``NfcReader.from_settings`` builds one from
``NfcReaderSettings`` (``edge.drivers.nfc_reader_settings``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nfc
import nfc.clf

from edge.drivers.nfc_reader_settings import DEFAULT_TARGETS, NfcReaderSettings

log = logging.getLogger(__name__)
# nfcpy logs every target it finds, raw UID included, at DEBUG, and each open at INFO: keep
# its loggers to warnings; this driver reports opening, faults and recovery itself.
logging.getLogger("nfc").setLevel(logging.WARNING)

HLTA = b"\x50\x00"


@dataclass(frozen=True)
class CardRead:
    """A card newly presented: raw UID bytes (hash them, never log them) and when it was read."""

    uid: bytes
    technology: str
    read_at: float


def uid_of(target: nfc.clf.RemoteTarget) -> tuple[bytes, str] | None:
    """Extract the card identity from whatever kind of target answered the poll."""
    if getattr(target, "sdd_res", None):
        return bytes(target.sdd_res), "A"
    if getattr(target, "sensb_res", None):
        return bytes(target.sensb_res[1:5]), "B"  # PUPI
    if getattr(target, "sensf_res", None):
        return bytes(target.sensf_res[1:9]), "F"  # IDm
    return None


class NfcReader:
    """Polls one nfcpy reader in a thread and calls ``on_card`` once per card presentation."""

    def __init__(
        self,
        path: str,
        on_card: Callable[[CardRead], None],
        on_fault: Callable[[str | None], None],
        targets: Sequence[str] = DEFAULT_TARGETS,
        poll_interval: float = 0.05,
        removal_polls: int = 2,
        reconnect_max_seconds: float = 30.0,
    ) -> None:
        self.path = path
        self._on_card = on_card
        self._on_fault = on_fault
        self._targets = [nfc.clf.RemoteTarget(t) for t in targets]
        self._poll_interval = poll_interval
        self._removal_polls = removal_polls
        self._reconnect_max = reconnect_max_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clf: nfc.ContactlessFrontend | None = None
        self._present: bytes | None = None
        self._misses = 0
        self.fault: str | None = None
        self.last_cycle = time.monotonic()

    @classmethod
    def from_settings(
        cls,
        settings: NfcReaderSettings,
        on_card: Callable[[CardRead], None],
        on_fault: Callable[[str | None], None],
    ) -> NfcReader:
        return cls(
            settings.path,
            on_card,
            on_fault,
            targets=settings.targets,
            poll_interval=settings.poll_interval,
            removal_polls=settings.removal_polls,
            reconnect_max_seconds=settings.reconnect_max_seconds,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nfc-reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self._close()

    @property
    def holding_card(self) -> bool:
        """Whether a card is on the reader, as the last polls saw it: the same card is read
        again only once it was taken away (``removal_polls`` empty polls)."""
        return self._present is not None

    @property
    def ready(self) -> bool:
        """Whether the reader is open and polling without a fault."""
        return self._clf is not None and self.fault is None

    def alive(self, within: float) -> bool:
        """Whether the polling thread went round its loop in the last ``within`` seconds.

        A driver stuck inside nfcpy (a wedged USB transfer) fails this, so the agent stops
        feeding the systemd watchdog and gets restarted.
        """
        return time.monotonic() - self.last_cycle < within

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self.last_cycle = time.monotonic()
            if self._clf is None and not self._open():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._reconnect_max)
                continue
            backoff = 0.5
            try:
                self._poll_once()
            except Exception as exc:  # any driver error means the reader is gone: reopen it
                if self._stop.is_set():
                    break
                self._report(f"reader failed: {type(exc).__name__}: {exc}")
                self._close()
                continue
            self._stop.wait(self._poll_interval)

    def _open(self) -> bool:
        try:
            clf = nfc.ContactlessFrontend()
            if not clf.open(self.path):
                raise OSError(f"no reader found at {self.path}")
        except Exception as exc:
            self._report(f"cannot open reader {self.path}: {exc}")
            return False
        self._clf = clf
        self._report(None)
        return True

    def _poll_once(self) -> None:
        assert self._clf is not None
        target = self._clf.sense(*self._targets, iterations=1)
        identity = uid_of(target) if target is not None else None
        if identity is None:
            self._misses += 1
            if self._misses >= self._removal_polls:
                self._present = None
            return
        uid, technology = identity
        self._misses = 0
        if technology == "A":
            self._halt(self._clf)
        if uid == self._present:
            return  # still the same card on the reader
        self._present = uid
        self._on_card(CardRead(uid, technology, time.monotonic()))

    @staticmethod
    def _halt(clf: nfc.ContactlessFrontend) -> None:
        # HLTA has no answer; some chips report the silence as an error.
        with contextlib.suppress(nfc.clf.CommunicationError):
            clf.exchange(HLTA, timeout=0)

    def _report(self, fault: str | None) -> None:
        if fault == self.fault:
            return
        self.fault = fault
        if fault:
            log.warning("NFC reader fault: %s", fault)
        else:
            log.info("NFC reader %s ready", self.path)
        self._on_fault(fault)

    def _close(self) -> None:
        clf, self._clf = self._clf, None
        if clf is not None:
            try:
                clf.close()
            except Exception:
                log.debug("closing the reader failed", exc_info=True)

"""A card for nfcpy's UDP reader: a second frontend listening as an ISO 14443-A target.

This simulates the physical world (a member's card in the field) for ``--simulate``, the
``hafen edge tap`` helper, tests and benchmarks; the reader side stays the real nfcpy driver.
"""

from __future__ import annotations

import time

import nfc
import nfc.clf

#: ATQA by UID size, as NXP cards answer. Triple-size (10-byte) UIDs are left out: nfcpy 1.0.4's
#: UDP target expects SEL_REQ 0x95 instead of 0x97 at cascade level 3 and never selects them.
_SENS_RES = {4: "0400", 7: "4400"}


class EmulatedCard:
    """Presents cards to the reader polling at ``path`` (``udp:HOST:PORT``)."""

    def __init__(self, path: str = "udp:127.0.0.1:54321") -> None:
        if not path.startswith("udp"):
            raise ValueError("only nfcpy's UDP reader can be given an emulated card")
        self.path = path

    def present(self, uid: bytes, hold: float = 0.0, timeout: float = 5.0) -> float | None:
        """Hold a card with ``uid`` on the reader until it is read, then ``hold`` seconds more.

        Returns the ``time.monotonic()`` at which the reader finished reading the card (the
        card's ``listen`` returned), or None if no reader read it within ``timeout``.
        """
        if len(uid) not in _SENS_RES:
            raise ValueError("an emulated card has a 4 or 7 byte UID")
        target = nfc.clf.LocalTarget("106A")
        target.sens_res = bytearray.fromhex(_SENS_RES[len(uid)])
        target.sdd_res = bytearray(uid)
        target.sel_res = bytearray.fromhex("00")
        clf = nfc.ContactlessFrontend()
        if not clf.open(self.path):
            raise OSError(f"cannot open {self.path}")
        try:
            if clf.listen(target, timeout) is None:
                return None
            read_at = time.monotonic()
            until = read_at + hold
            while (left := until - time.monotonic()) > 0:
                clf.listen(target, left)  # keep answering polls: the card is still there
            return read_at
        finally:
            clf.close()

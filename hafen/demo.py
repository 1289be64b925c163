"""``hafen demo``: a simulated space with one door you can tap cards at, no hardware needed.

The operators' issue grows this into a whole simulated network with a hub and a dashboard.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from pathlib import Path

from edge.agent import simulate


def run_demo(auto_seconds: float = 4.0) -> None:
    """Start the door, then tap cards chosen at the prompt (or in turn, without a terminal)."""
    from edge.agent.agent import EdgeAgent
    from edge.agent.store import EdgeStore
    from edge.drivers.card_emulator import EmulatedCard

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    say = logging.getLogger("demo").info
    with tempfile.TemporaryDirectory(prefix="hafen-demo-") as tmp:
        cfg = simulate.prepare(None, Path(tmp), None, say)
        co2 = simulate.simulated_co2(cfg, Path(tmp))
        store = EdgeStore(cfg.store.path, cfg.store.synchronous)
        agent = EdgeAgent(cfg, store)
        world = simulate.SimulatedDoorway(cfg.door, say=say)
        agent.start()
        world.start()
        card = EmulatedCard(cfg.reader.path)
        uids = list(simulate.DEMO_CARDS)
        try:
            if sys.stdin.isatty():
                _prompt(card, uids)
            else:
                _cycle(card, uids, auto_seconds)
        except KeyboardInterrupt:
            pass
        finally:
            world.stop()
            agent.stop()
            store.close()
            if co2 is not None:
                co2.unplug()
            say(f"demo stopped after {agent.decisions} decisions")


def _menu(uids: list[str]) -> str:
    lines = [
        f"  {i}: {uid} ({simulate.DEMO_CARDS[uid] or 'unknown card'})"
        for i, uid in enumerate(uids, 1)
    ]
    return "Tap a card: type its number and Enter (q quits)\n" + "\n".join(lines)


def _prompt(card, uids: list[str]) -> None:
    print(_menu(uids))
    for line in sys.stdin:
        choice = line.strip()
        if choice in ("q", "quit", "exit"):
            return
        if choice.isdigit() and 1 <= int(choice) <= len(uids):
            uid = bytes.fromhex(uids[int(choice) - 1])
            threading.Thread(target=card.present, args=(uid, 0.3), daemon=True).start()
        else:
            print(_menu(uids))


def _cycle(card, uids: list[str], every: float) -> None:
    stop = threading.Event()
    while not stop.is_set():
        for uid in uids:
            card.present(bytes.fromhex(uid), hold=0.3)
            if stop.wait(every):
                return

"""The health gate a new version of the agent passes before it is called healthy.

A version is healthy when the door works with it, not when its process merely started
(eclipse-hawkbit/hawkbit#3185: success recorded before the device ran the new version):

- the door's loop goes round (it does at least once a second);
- the reader is open and polling, without a fault;
- an access list of this site, not older than the one applied, passed the new version's
  signature check (the broker's retained list, which it gets on connecting);
- the broker is reached (over TLS, as the door's config has it), never the internet.

Each is asked of the running agent, not tested by a side path, and the gate says which
are missing when its time is up.
"""

from __future__ import annotations

import threading
import time

from edge.agent.agent import EdgeAgent

#: The loop goes round once a second at least; a longer pause means it is stuck.
LOOP_SILENCE = 5.0
#: How often the gate looks.
POLL = 0.1


def unmet(agent: EdgeAgent) -> list[str]:
    """What of the gate the agent does not meet now (empty: it passes)."""
    missing = []
    if time.monotonic() - agent.last_cycle > LOOP_SILENCE:
        missing.append("the door's loop is not running")
    if not agent.reader.ready:
        fault = agent.reader.fault
        missing.append(f"the reader is not ready{f' ({fault})' if fault else ''}")
    if agent.acl_updater is None or not agent.acl_updater.verified.is_set():
        missing.append("no access list of this site verified yet")
    if agent.link is None or not agent.link.connected:
        tls = agent.cfg.mqtt is not None and agent.cfg.mqtt.ca_file is not None
        missing.append(f"the broker is not reached{' over TLS' if tls else ''}")
    return missing


def wait_for_gate(agent: EdgeAgent, seconds: float, stop: threading.Event) -> str | None:
    """Wait up to ``seconds`` for the gate to pass: None when it did, else why not."""
    deadline = time.monotonic() + seconds
    while True:
        missing = unmet(agent)
        if not missing:
            return None
        if time.monotonic() >= deadline:
            return f"not healthy after {seconds:.0f} s: " + "; ".join(missing)
        if stop.wait(POLL):
            return "stopped before its health gate passed"

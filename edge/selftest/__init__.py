"""The door's self-test (``hafen edge selftest``): a technician on site checks every part.

Run with the agent stopped (it claims the door, edge.agent.door_claim): it pulses the strike,
flashes the LED, beeps, reads the contact, the exit button, a card, each room's PIR and CO2
sensor, reaches the broker as the door does, and checks the access list in force and its
signature. Each check is a small function taking the hardware objects (``door``, ``sensors``,
``card``, ``access``, ``broker``) and returning a ``results.CheckResult``; ``run`` builds the
parts from the config, runs the checks in order and keeps the result in the outbox as a
``device.selftest`` event, so the hub's fleet page shows it once the agent runs again.
"""

"""Stand-ins for what hafen meets in the world: hardware, people and infrastructure.

Nothing in ``edge`` or ``hub`` imports this package (an import contract checks it); the demo,
the tests and the benchmarks drive the production code through it:

- ``broker``: a mosquitto of our own with the shipped settings;
- ``card_emulator``, ``co2_sensor``: a card on nfcpy's UDP reader, a CO2 sensor on a pty;
- ``door``: mock pins, a door leaf and someone who walks through it;
- ``occupancy_script``, ``space``: scripted days and the people who play them at a site;
- ``edge_site``: one simulated site (``hafen edge run --simulate``);
- ``demo_network``, ``demo``: a whole network (``hafen demo``).
"""

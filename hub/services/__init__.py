"""The hub's service layer: what the hub does, apart from how it is asked (HTTP, dashboard, CLI).

One module per domain: ``sites`` (the directory of sites and devices), ``members``, ``cards``,
``plans`` (plans and grants), ``companies`` (employers and their staff), booking (the
transaction in ``bookings``, its rules in ``booking_rules``, ``booking_counts`` and
``allowance``, its bodies in ``booking_models``, reading back in ``booking_reads``; the
shared desk count in ``desk_pool``), ``users`` (users and tokens), ``overview`` (the
network at a glance, door and live picture), ``fleet``, ``occupancy``, ``visits``,
``events`` (door events and commands to doors), ``reports`` and ``site_page`` (what a site's
dashboard page shows). A new domain (device enrolment, fleet updates) is a new module beside
them.

The conventions every module keeps:

- A public function takes the ``Engine`` and owns its transaction: reads in
  ``engine.connect()``, writes in ``engine.begin()``. Helpers that take a ``Connection`` are
  for other services to compose inside one transaction.
- Whoever asks is passed as their ``Principal``; what their role lets them see is decided by
  ``scope.Scope`` alone (their sites, whether they may see people), never by the caller.
- A change that affects who may enter goes to the doors through ``publishing``, after its
  transaction committed (the publisher compiles from the store).
- Results are models (pydantic or dataclasses); failures are the errors of ``errors``, which
  the adapters turn into HTTP statuses. Nothing here imports FastAPI, Starlette or Jinja
  (an import-linter contract in pyproject.toml holds it so).
"""

"""Hardware drivers: small classes, each with one real backend that tests drive for real."""

"""The edge agent: config, local store, access decisions and door behaviour."""

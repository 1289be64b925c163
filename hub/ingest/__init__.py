"""Ingest of edge events into the hub's store (arrives with the MQTT protocol issue)."""

"""Ingest of edge events into the hub's store: batches, dead letters, progress marks and acks."""

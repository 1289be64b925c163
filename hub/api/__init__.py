"""The hub's HTTP API (FastAPI): one module per resource, each route checks the caller's role."""

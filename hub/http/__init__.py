"""What the hub's two HTTP adapters share, the API (hub.api) and the dashboard (hub.web):
their FastAPI dependencies, the mapping of service errors to statuses, and a CSV download.
Neither adapter owns it, so neither needs to import the other."""

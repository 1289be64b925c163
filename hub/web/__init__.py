"""The operators' dashboard: server-rendered pages, charts and the live overview."""

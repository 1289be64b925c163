"""The hub: members, cards, plans, companies, bookings and sites for the whole network, its
store, the access lists it signs and sends, ingest, reports, the API and the dashboard."""

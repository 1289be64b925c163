"""The hub: members, plans, sites and bookings for the whole network (grows with later issues)."""

"""The software on a space's Raspberry Pi: door access, sensing and the local cache."""

"""The edge's updater (issue 17): installs a signed release beside the running one and
switches to it atomically, so that a power cut at any step leaves one working version.
It is a process of its own and imports nothing of the door agent it replaces."""

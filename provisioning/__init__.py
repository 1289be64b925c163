"""Setting up new sites and devices (``hafen provision``; see ROADMAP)."""

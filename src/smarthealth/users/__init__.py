"""Account management."""

"""Passwords, tokens, the current user and role checks, and the auth routes."""

"""Append-only, hash-chained audit trail: writing events, reading them, verifying the chain."""

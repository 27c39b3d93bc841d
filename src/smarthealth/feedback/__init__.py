"""Feedback on answers: 👍 / 👎 by the turn's owner, listed for auditors, exported for review."""

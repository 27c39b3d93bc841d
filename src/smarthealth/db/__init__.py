"""Database access: engine and sessions, the embedded server, migrations."""

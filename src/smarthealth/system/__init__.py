"""Service-level routes: API information and health."""

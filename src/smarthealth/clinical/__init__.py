"""Patient lookup, record loading and catalogs."""

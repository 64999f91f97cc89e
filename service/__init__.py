"""authd: a standalone, async token service."""

"""Storage: one database interface, a PostgreSQL and a SQLite implementation."""

from service.store.database import Connection, Database, Row, StorageUnavailable, open_database

__all__ = ["Connection", "Database", "Row", "StorageUnavailable", "open_database"]

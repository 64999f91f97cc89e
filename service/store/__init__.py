"""Storage: one database interface, a PostgreSQL and a SQLite implementation."""

from service.store.database import (
    Connection,
    Database,
    ForeignKeyViolation,
    IntegrityViolation,
    Row,
    SchemaOutdated,
    Statement,
    StorageUnavailable,
    UniqueViolation,
    open_database,
)

__all__ = [
    "Connection", "Database", "ForeignKeyViolation", "IntegrityViolation", "Row",
    "SchemaOutdated", "Statement", "StorageUnavailable", "UniqueViolation", "open_database",
]

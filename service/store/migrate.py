"""Apply the numbered SQL files under ``migrations/<dialect>/`` once each.

Everything happens in one transaction behind a named lock: two replicas that run
``authd migrate`` at the same moment queue, and the second finds nothing to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from service.store.database import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"

_CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY, applied_at double precision NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    path: Path

    def statements(self) -> list[str]:
        """Split on ``;`` at line ends; our migrations hold no procedural bodies."""
        text = "\n".join(
            line for line in self.path.read_text().splitlines() if not line.strip().startswith("--")
        )
        return [part.strip() for part in text.split(";\n") if part.strip().rstrip(";")]


def available(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    folder = directory / dialect
    return [Migration(p.stem, p) for p in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))]


async def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; return the versions applied by this call."""
    applied_now: list[str] = []
    async with db.transaction() as tx:
        await tx.lock("authd.migrate")
        await tx.execute(_CREATE_LEDGER)
        done = {r["version"] for r in await tx.fetch("SELECT version FROM schema_migrations")}
        for migration in available(db.dialect, directory):
            if migration.version in done:
                continue
            for statement in migration.statements():
                await tx.execute(statement.rstrip(";"))
            await tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                migration.version,
                time.time(),
            )
            applied_now.append(migration.version)
    return applied_now


async def pending(db: Database, directory: Path = MIGRATIONS_DIR) -> list[str]:
    await db.execute(_CREATE_LEDGER)
    done = {r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")}
    return [m.version for m in available(db.dialect, directory) if m.version not in done]

"""Schema changes of the local SQLite database, applied in order when it opens.

SQLite's `user_version` says how many have been applied; each runs in one transaction
with the version bump, so a crash leaves the database before or after it, never between.
"""

from __future__ import annotations

import sqlite3

from chalicelib.domain.models import LEGACY_TENANT

# Version 1, tenancy (issue 15): records, search entries and byte claims made before it
# belong to the `legacy` tenant. Search keys and claims become `<tenant>#<key>`: bare
# keys had no "#" (a case-folded ImageNet class name; a hex digest).
TO_TENANTS = (
    "UPDATE images SET item = json_set(item, '$.Tenant', :legacy)"
    " WHERE json_extract(item, '$.Tenant') IS NULL",
    "UPDATE label_index SET label_key = :legacy || '#' || label_key"
    " WHERE instr(label_key, '#') = 0",
    "UPDATE image_digests SET sha256 = :legacy || '#' || sha256 WHERE instr(sha256, '#') = 0",
    "CREATE INDEX IF NOT EXISTS images_by_tenant_sha256"
    " ON images (json_extract(item, '$.Tenant'), json_extract(item, '$.Sha256'))",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (TO_TENANTS,)
PARAMETERS = {"legacy": LEGACY_TENANT}


def schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations the database has not had; the version it is at now."""
    for version, statements in enumerate(MIGRATIONS, start=1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(connection) < version:  # another process may have done it
                for statement in statements:
                    connection.execute(statement, PARAMETERS)
                connection.execute(f"PRAGMA user_version = {version}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return schema_version(connection)

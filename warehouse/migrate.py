"""Schema versions: each migration is a SQL file applied once, in order, and recorded in schema_meta.

The next change to the schema is a new file (e.g. 002_add_column.sql) appended to MIGRATIONS; a
database at version 1 then gets exactly that file. views.sql (analysis views, optional) is re-applied
after the migrations whenever a migration ran or the file changed (views_version records its digest).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gongkai.warehouse.db import Database

SQL_DIR = Path(__file__).parent
MIGRATIONS: list[tuple[int, str]] = [
    (1, "schema.sql"),
    (2, "002_current_reports_rank.sql"),
    (3, "003_current_rules.sql"),
    (4, "004_crawl_state.sql"),
    (5, "005_page_pictures.sql"),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _aliases_of_known_agencies(db: Database) -> None:
    """Version 3: every agency's name becomes its first alias (the identity keys are computed in Python)."""
    from gongkai.warehouse.agencies import city_key, identity_key, name_key

    for agency_id, name, created_at in db.query("SELECT agency_id, name, created_at FROM agencies ORDER BY agency_id"):
        db.execute(
            "INSERT INTO agency_aliases (name_key, agency_id, name, identity_key, city_key, first_seen) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name_key, agency_id) DO NOTHING",
            [name_key(name), agency_id, name, identity_key(name), city_key(name), created_at],
        )


# Work a migration needs beyond its SQL file, run in the same transaction right after it.
AFTER_SQL: dict[int, Callable[[Database], None]] = {3: _aliases_of_known_agencies}
VIEWS_FILE = "views.sql"


def current_version(db: Database) -> int:
    has_meta = db.scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_meta' AND table_schema = current_schema()"
    )
    if not has_meta:
        return 0
    value = db.scalar("SELECT value FROM schema_meta WHERE key = 'schema_version'")
    return int(value) if value is not None else 0


def migrate(db: Database) -> int:
    """Bring the database to SCHEMA_VERSION; return the version it was at."""
    start = current_version(db)
    migrated = False
    if start > SCHEMA_VERSION:
        raise RuntimeError(f"database schema version {start} is newer than this gongkai ({SCHEMA_VERSION}); upgrade gongkai")
    for version, filename in MIGRATIONS:
        if version <= start:
            continue
        with db.transaction():
            db.lock_for_update("gongkai-migrate")
            if current_version(db) >= version:  # another process got there first
                continue
            db.execute_script((SQL_DIR / filename).read_text(encoding="utf-8"))
            if version in AFTER_SQL:
                AFTER_SQL[version](db)
            db.execute("DELETE FROM schema_meta WHERE key = 'schema_version'")
            db.execute("INSERT INTO schema_meta (key, value) VALUES ('schema_version', ?)", [str(version)])
            migrated = True
    views = SQL_DIR / VIEWS_FILE
    if views.exists():
        from gongkai.warehouse.views import (
            recorded_digest,  # not at import: `python -m warehouse.views` imports this module
        )

        text = views.read_text(encoding="utf-8")
        wanted = recorded_digest(text)
        # Unchanged views are left alone: re-creating them takes locks that would wait for (and block)
        # researchers' running queries on PostgreSQL. After a migration they are re-created anyway.
        if migrated or views_digest(db) != wanted:
            with db.transaction():
                # Two writers opening a stale warehouse at once: the second waits, then finds them current.
                db.lock_for_update("gongkai-migrate")
                if migrated or views_digest(db) != wanted:
                    db.execute_script(text)
    return start


def views_digest(db: Database) -> str | None:
    """The digest of the views.sql the database's views were created from (None before any)."""
    has_view = db.scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'views_version' AND table_schema = current_schema()"
    )
    return str(db.scalar("SELECT digest FROM views_version")) if has_view else None

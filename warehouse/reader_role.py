"""The PostgreSQL role `gongkai query` runs researchers' SQL as: one that can read the warehouse and nothing else.

No parser can know every server function with an effect, so PostgreSQL itself must refuse them: `gongkai
query` refuses a connection whose role could write, is a superuser, or holds a predefined role that reads
server files, runs programs or signals other sessions (unless told --allow-writable-role), and
`reader_role_sql` prints the statements that create such a role.
"""

from __future__ import annotations

import re
from typing import Any

# Predefined roles whose members can reach outside the warehouse (PostgreSQL 14+ names; absent ones are skipped).
RISKY_PREDEFINED_ROLES = [
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program", "pg_signal_backend",
    "pg_write_all_data", "pg_checkpoint", "pg_database_owner", "pg_create_subscription", "pg_use_reserved_connections",
    "pg_signal_autovacuum_worker",
]

ROLE_ATTRIBUTES = """
SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user
"""
RISKY_MEMBERSHIPS = """
SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY rolname
"""
# Anything the role owns, or may change, in the database's own schemas (not the system catalogs).
WRITABLE_OBJECTS = """
SELECT 'schema ' || n.nspname FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND (pg_has_role(current_user, n.nspowner, 'MEMBER') OR has_schema_privilege(n.oid, 'CREATE'))
UNION ALL
SELECT 'database ' || current_database()
WHERE has_database_privilege(current_database(), 'CREATE')
   OR pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
UNION ALL
SELECT 'table ' || n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND (pg_has_role(current_user, c.relowner, 'MEMBER')
       OR (c.relkind <> 'S' AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES'))
       OR (c.relkind = 'S' AND has_sequence_privilege(c.oid, 'USAGE, UPDATE')))
LIMIT 5
"""


class WritableRole(PermissionError):
    """The connection's role could change the warehouse or reach outside it: `gongkai query` will not use it."""


def role_risks(conn: Any) -> list[str]:
    """Why this connection's role is not a read-only role (empty when it is one)."""
    with conn.cursor() as cur:
        attributes = cur.execute(ROLE_ATTRIBUTES).fetchone()
        risks = [
            f"it is {label}"
            for label, flag in zip(
                ("a superuser", "allowed to create roles", "allowed to create databases", "a replication role",
                 "exempt from row security"),
                attributes or (),
                strict=False,
            )
            if flag
        ]
        risks += [f"it is a member of {row[0]}" for row in cur.execute(RISKY_MEMBERSHIPS, [RISKY_PREDEFINED_ROLES])]
        risks += [f"it can write or owns {row[0]}" for row in cur.execute(WRITABLE_OBJECTS)]
    return risks


def check_reader_role(conn: Any) -> None:
    risks = role_risks(conn)
    if risks:
        raise WritableRole(
            f"role {conn.info.user!r} is not read-only ({'; '.join(risks[:4])}): connect as a role that can only "
            "read (`gongkai query --reader-role-sql` prints how to create one), or pass --allow-writable-role"
        )


def reader_role_sql(conn: Any, role: str = "gongkai_reader") -> str:
    """The statements, for an administrator to run, that create `role` able to read this warehouse and nothing else.

    `conn` is the writer's connection (the warehouse's owner): its database, schema and user fill in the
    names, and default privileges make the views a writer re-creates later readable too."""
    from psycopg import sql

    database, schema, owner = conn.execute("SELECT current_database(), current_schema(), current_user").fetchone()

    def ident(name: str) -> str:  # bare when it needs no quotes: the SQL is read by people first
        return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else sql.Identifier(name).as_string(conn)

    r, d, s, o = ident(role), ident(database), ident(schema), ident(owner)
    return "\n".join([
        f"-- A role that can read the gongkai warehouse {database} and nothing else (run as an administrator).",
        f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;",
        f"-- then give it a password from psql:  \\password {role}",
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC;  -- before PostgreSQL 15 anyone could create tables in public",
        f"GRANT CONNECT ON DATABASE {d} TO {r};",
        f"GRANT USAGE ON SCHEMA {s} TO {r};",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r};",
        f"-- the views and tables {owner} creates later (gongkai re-creates its views after an upgrade):",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT SELECT ON TABLES TO {r};",
        f"ALTER ROLE {r} SET default_transaction_read_only = on;",
        f"ALTER ROLE {r} SET statement_timeout = '5min';",
        f"-- then: gongkai query --db postgresql://{role}@HOST/{database} \"SELECT …\"",
    ])

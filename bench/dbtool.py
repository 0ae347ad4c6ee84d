"""Database chores for the benchmark, run with the baselines' interpreter (it has asyncpg).

    python -m bench.dbtool createdb URL NAME            create (or re-create) database NAME
    python -m bench.dbtool baseline URL ITEMS TOKEN      the baselines' schema, items and a session
    python -m bench.dbtool sqlite PATH ITEMS TOKEN       the same in a new SQLite file (WAL mode)

URL is a libpq-style postgresql:// URL (no +driver).
"""

import asyncio
import datetime as dt
import hashlib
import sqlite3
import sys
from pathlib import Path

import asyncpg

# The generated project's tables, as its initial migration creates them (only what the
# baselines read and write).
BASELINE_SCHEMA = """
CREATE TABLE items (
    id serial PRIMARY KEY,
    name varchar(200) NOT NULL UNIQUE,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    stock integer NOT NULL CHECK (stock >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE users (
    id serial PRIMARY KEY,
    email varchar(320) NOT NULL UNIQUE,
    password_hash varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    user_id integer NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    display_name varchar(100) NOT NULL
);
CREATE TABLE user_sessions (
    id serial PRIMARY KEY,
    token_hash varchar(64) NOT NULL UNIQUE,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token varchar(64) NOT NULL,
    data json NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ix_user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX ix_user_sessions_expires_at ON user_sessions (expires_at);
"""

# The same tables as the generated SQLite migration creates them (SQLAlchemy's DDL for SQLite).
SQLITE_SCHEMA = """
CREATE TABLE items (
    id INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL UNIQUE,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock INTEGER NOT NULL CHECK (stock >= 0),
    created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL
);
CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY,
    email VARCHAR(320) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL
);
CREATE TABLE accounts (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    display_name VARCHAR(100) NOT NULL
);
CREATE TABLE user_sessions (
    id INTEGER NOT NULL PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token VARCHAR(64) NOT NULL,
    data JSON NOT NULL,
    created_at DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL
);
CREATE INDEX ix_user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX ix_user_sessions_expires_at ON user_sessions (expires_at);
"""


def sqlite_baseline(path: Path, items: int, token: str) -> None:
    """A new SQLite file with the baselines' schema, items and a session for `token`."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(SQLITE_SCHEMA)
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO items (name, price_cents, stock) VALUES (?, ?, 1000)",
            ((f"item-{n:06d}", (n * 37) % 100_000) for n in range(1, items + 1)),
        )
        user_id = connection.execute(
            "INSERT INTO users (email, password_hash) VALUES ('bench@example.com', 'x')"
            " RETURNING id"
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO accounts (user_id, display_name) VALUES (?, 'Bench')", (user_id,)
        )
        now = dt.datetime.now(dt.UTC)
        connection.execute(
            "INSERT INTO user_sessions (token_hash, user_id, csrf_token, data, created_at,"
            " last_seen_at, expires_at) VALUES (?, ?, 'csrf', '{}', ?, ?, ?)",
            (
                hashlib.sha256(token.encode()).hexdigest(),
                user_id,
                now.isoformat(sep=" "),
                now.isoformat(sep=" "),
                (now + dt.timedelta(days=14)).isoformat(sep=" "),
            ),
        )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def createdb(url: str, name: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def baseline(url: str, items: int, token: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(BASELINE_SCHEMA)
        await connection.execute(
            "INSERT INTO items (name, price_cents, stock)"
            " SELECT 'item-' || lpad(g::text, 6, '0'), (g * 37) % 100000, 1000"
            " FROM generate_series(1, $1) AS g",
            items,
        )
        user_id = await connection.fetchval(
            "INSERT INTO users (email, password_hash) VALUES ('bench@example.com', 'x')"
            " RETURNING id"
        )
        await connection.execute(
            "INSERT INTO accounts (user_id, display_name) VALUES ($1, 'Bench')", user_id
        )
        await connection.execute(
            "INSERT INTO user_sessions (token_hash, user_id, csrf_token, data, created_at,"
            " last_seen_at, expires_at) VALUES ($1, $2, 'csrf', '{}', now(), now(),"
            " now() + interval '14 days')",
            hashlib.sha256(token.encode()).hexdigest(),
            user_id,
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def main(argv: list[str]) -> None:
    match argv:
        case ["createdb", url, name]:
            asyncio.run(createdb(url, name))
        case ["baseline", url, items, token]:
            asyncio.run(baseline(url, int(items), token))
        case ["sqlite", path, items, token]:
            sqlite_baseline(Path(path), int(items), token)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

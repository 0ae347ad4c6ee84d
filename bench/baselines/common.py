"""What both baselines share: the pool, the SQL, the session-token hash.

Settings come from the environment, as for the generated services: BENCH_DATABASE_URL
(postgresql://…), DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW (the pool holds up to their sum,
like SQLAlchemy's QueuePool), SESSION_COOKIE_NAME.
"""

import hashlib
import os

import asyncpg

ITEM_COLUMNS = "id, name, price_cents, stock, created_at"
GET_ITEM = f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1"
LIST_ITEMS = f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id LIMIT $1 OFFSET $2"
CREATE_ITEM = (
    f"INSERT INTO items (name, price_cents, stock) VALUES ($1, $2, $3) RETURNING {ITEM_COLUMNS}"
)
# The session and its user in one round trip, as the generated services do.
CURRENT_USER = (
    "SELECT u.id, u.email, a.display_name FROM user_sessions s"
    " JOIN users u ON u.id = s.user_id JOIN accounts a ON a.user_id = u.id"
    " WHERE s.token_hash = $1 AND s.expires_at > now()"
)
COOKIE_NAME = os.environ.get("SESSION_COOKIE_NAME", "session")
MAX_TOKEN_LENGTH = 64


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def database_url() -> str:
    return os.environ["BENCH_DATABASE_URL"]


def pool_limits() -> tuple[int, int]:
    """(pool size, overflow), read like the generated services read them."""
    return (
        int(os.environ.get("DATABASE_POOL_SIZE", "10")),
        int(os.environ.get("DATABASE_MAX_OVERFLOW", "10")),
    )


async def create_pool() -> asyncpg.Pool:
    size, overflow = pool_limits()
    return await asyncpg.create_pool(database_url(), min_size=size, max_size=size + overflow)

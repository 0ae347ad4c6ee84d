"""The two reference applications the benchmark runs next to the generated services.

Both serve the same endpoints as a generated project (with examples and database user sessions)
and run the same SQL, with asyncpg and no ORM: `starlette_asyncpg` is the lowest cost a Python
ASGI service of this shape can reach; `fastapi_asyncpg` is what a team would write by hand with
FastAPI and pydantic models. They share `common` (queries, pool, token hashing).
"""

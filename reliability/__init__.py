"""Reliability suite of the template (issue 5): generated services under load, faults and bad
input, and past one process.

Run from the repository root::

    uv run python -m reliability            # full: 15 variants, every check (~N minutes)
    uv run python -m reliability --quick    # CI: 3 variants, smaller loads (~M minutes)
    uv run python -m reliability --variant asyncpg-middleware-database --check outage
    uv run python -m reliability --list     # the plan, nothing run

It renders variants of the working tree (uncommitted edits included), installs them with uv,
serves each with uvicorn in its own process (ENVIRONMENT=production) against a real database,
drives it with httpx on loopback, inspects the database directly (row counts, pg_stat_activity,
SQLite's write lock, the server's open files), prints a table of what it tried and what held,
and exits non-zero when anything did not hold. PostgreSQL: TEST_POSTGRES_URL, else a throwaway
cluster from the local binaries (tests/postgres.py); the outage check needs the throwaway one.
PgBouncer: installed with apt-get when missing and running as root. As root, SQLite servers run
as RELIABILITY_OS_USER (default nobody) so that their database file can be made unreadable.
"""

"""Run Alembic commands on a connection the tests already hold."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

ALEMBIC_INI = Path(__file__).parents[2] / "alembic.ini"


def alembic(connection: Connection, name: str, *args: Any) -> None:
    """Call `alembic.command.<name>(config, *args)` on `connection` (use with `run_sync`)."""
    config = Config(ALEMBIC_INI)
    config.attributes["connection"] = connection
    config.attributes["configure_logger"] = False
    getattr(command, name)(config, *args)

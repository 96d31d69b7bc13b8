"""Alembic configuration built in code (no alembic.ini to keep in step)."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy.engine import Connection

from nguon.app import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "migrations"


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """Config for the project's migrations against ``url`` (or an open ``connection``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Date-prefixed files: they sort in the order they were written.
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config

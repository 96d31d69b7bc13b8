"""Migrations: upgrade from empty, match the models, downgrade the latest, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from nguon.app import import_models
from nguon.db import Base, make_engine
from nguon.migrate import MIGRATIONS, alembic_config


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_revision_files_are_date_prefixed() -> None:
    names = [p.name for p in (MIGRATIONS / "versions").glob("*.py")]
    assert names
    assert all(name[:8].isdigit() and name[8] == "_" for name in names), names


def test_upgrade_from_empty_matches_the_models_and_downgrade_works(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    import_models()
    assert tables(empty_database) == set(Base.metadata.tables)

    engine = make_engine(empty_database)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == [], "models and migrations disagree; write a migration"

    script = ScriptDirectory.from_config(config)
    head = script.get_revision(script.get_current_head())
    command.downgrade(config, "-1")
    engine = make_engine(empty_database)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head.down_revision
    engine.dispose()
    if head.down_revision is None:
        assert tables(empty_database) == set()
    command.upgrade(config, "head")
    assert tables(empty_database) == set(Base.metadata.tables)

"""EPCIS 2.0 semantics: error declarations stored beside the event they correct (the same
eventID, told apart by ``error_declaration``); named queries.

Revision ID: 7a4e2d9c1b36
Revises: a7d3e5f1c2b9
Create Date: 2026-11-29 13:20:00
"""

import re
from collections.abc import Sequence
from urllib.parse import unquote

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "7a4e2d9c1b36"
down_revision: str | None = "a7d3e5f1c2b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _keep_identifiers() -> bool:
    """SQLite rebuilds epcis_event to change its unique constraint; with foreign keys on,
    dropping the old table would cascade to every event_epc row. Keep them aside."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute(sa.text("CREATE TEMP TABLE event_epc_kept AS SELECT * FROM event_epc"))
    return True


def _restore_identifiers(kept: bool) -> None:
    if kept:
        op.execute(sa.text("DELETE FROM event_epc"))
        op.execute(sa.text("INSERT INTO event_epc SELECT * FROM event_epc_kept"))
        op.execute(sa.text("DROP TABLE event_epc_kept"))


def upgrade() -> None:
    kept = _keep_identifiers()
    with op.batch_alter_table("epcis_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("error_declaration", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("declaration_time", nguon.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("error_reason", sa.String(length=200), nullable=True))
        batch_op.drop_constraint("uq_epcis_event_event_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_epcis_event_event_id_error_declaration"),
            ["event_id", "error_declaration"],
        )
        batch_op.create_index(
            batch_op.f("ix_epcis_event_declaration_time"), ["declaration_time"], unique=False
        )
    _restore_identifiers(kept)
    with op.batch_alter_table("event_epc", schema=None) as batch_op:
        batch_op.add_column(sa.Column("serial", sa.String(length=20), nullable=True))
        batch_op.create_index("ix_event_epc_gtin_serial", ["gtin", "serial"], unique=False)
    _fill_serials()
    op.create_table(
        "epcis_named_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_epcis_named_query_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_epcis_named_query_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_named_query")),
        sa.UniqueConstraint("name", name=op.f("uq_epcis_named_query_name")),
    )


_DL_SERIAL = re.compile(r"/21/([^/?#]+)")
_URN_SERIAL = re.compile(r"^urn:epc:id:sgtin:[^.]*\.[^.]*\.(.+)$")


def _fill_serials() -> None:
    """The serial of every item already stored (Digital Link /21/ or SGTIN URN)."""
    bind = op.get_bind()
    table = sa.table(
        "event_epc",
        sa.column("id", sa.Integer()),
        sa.column("epc", sa.String()),
        sa.column("gtin", sa.String()),
        sa.column("serial", sa.String()),
    )
    rows = bind.execute(sa.select(table.c.id, table.c.epc).where(table.c.gtin.isnot(None)))
    updates = []
    for row_id, epc in rows:
        match = _DL_SERIAL.search(epc) or _URN_SERIAL.match(epc)
        if match:
            serial = unquote(match[1])
            if len(serial) <= 20:
                updates.append({"row_id": row_id, "value": serial})
    if updates:
        bind.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(serial=sa.bindparam("value")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("event_epc", schema=None) as batch_op:
        batch_op.drop_index("ix_event_epc_gtin_serial")
        batch_op.drop_column("serial")
    op.drop_table("epcis_named_query")
    # Declarations have no place in the old table (one row per eventID).
    op.execute(
        sa.text(
            "DELETE FROM event_epc WHERE event_pk IN "
            "(SELECT id FROM epcis_event WHERE error_declaration)"
        )
    )
    op.execute(sa.text("DELETE FROM epcis_event WHERE error_declaration"))
    kept = _keep_identifiers()
    with op.batch_alter_table("epcis_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_epcis_event_declaration_time"))
        batch_op.drop_constraint("uq_epcis_event_event_id_error_declaration", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_epcis_event_event_id"), ["event_id"])
        batch_op.drop_column("error_reason")
        batch_op.drop_column("declaration_time")
        batch_op.drop_column("error_declaration")
    _restore_identifiers(kept)

"""fine bands: the sanctions decree as versioned data, and the band a case applies

Revision ID: 822022ed987d
Revises: d3eda075d3f4
Create Date: 2026-11-23 01:40:44.019865
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "822022ed987d"
down_revision: str | None = "d3eda075d3f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fine_band",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decree", sa.String(length=100), nullable=False),
        sa.Column("amended_by", sa.String(length=200), nullable=False),
        sa.Column("article", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("min_vnd", sa.BigInteger(), nullable=False),
        sa.Column("max_vnd", sa.BigInteger(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fine_band")),
    )
    with op.batch_alter_table("infringement_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fine_band_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_infringement_case_fine_band_id_fine_band"),
            "fine_band",
            ["fine_band_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("infringement_case", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_infringement_case_fine_band_id_fine_band"), type_="foreignkey"
        )
        batch_op.drop_column("fine_band_id")

    op.drop_table("fine_band")

"""report state from its case: the reporter sees the case's state and note, no copies

Revision ID: b1e7789fa9fe
Revises: 3eb04dd77221
Create Date: 2026-11-23 03:41:15.097481
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1e7789fa9fe"
down_revision: str | None = "3eb04dd77221"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("public_note")
        batch_op.drop_column("state")


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=30), nullable=False, server_default="received")
        )
        batch_op.add_column(sa.Column("public_note", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE report SET "
        "state = (SELECT c.state FROM infringement_case c WHERE c.id = report.case_id), "
        "public_note = (SELECT c.public_note FROM infringement_case c WHERE c.id = report.case_id) "
        "WHERE case_id IS NOT NULL"
    )

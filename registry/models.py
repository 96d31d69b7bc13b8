"""Registry records."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nguon.audit import Audited
from nguon.db import Base, utcnow


class OrganisationKind(enum.StrEnum):
    COOPERATIVE = "cooperative"
    ASSOCIATION = "association"
    ENTERPRISE = "enterprise"
    HOUSEHOLD = "household"
    AGENCY = "agency"


ORGANISATION_KINDS = tuple(k.value for k in OrganisationKind)


class Organisation(Audited, Base):
    """A cooperative, association, enterprise, household or state agency."""

    __tablename__ = "organisation"
    __table_args__ = (CheckConstraint(f"kind IN {ORGANISATION_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300))
    # Mã số thuế: 10 digits, or 10-3 for a branch; unique when present.
    tax_code: Mapped[str | None] = mapped_column(String(14), unique=True)
    address: Mapped[str] = mapped_column(Text, default="")
    admin_unit_code: Mapped[str | None] = mapped_column(String(20))
    gln: Mapped[str | None] = mapped_column(String(13), unique=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"

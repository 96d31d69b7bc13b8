"""Reports of suspected infringements, with their photos."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nguon.audit import Audited
from nguon.db import Base, utcnow
from registry.models import Organisation


class ReportCategory(enum.StrEnum):
    COUNTERFEIT = "counterfeit"
    UNAUTHORISED_USE = "unauthorised_use"
    FAKE_CODE = "fake_code"
    LABELLING = "labelling"
    OTHER = "other"


CATEGORIES = tuple(c.value for c in ReportCategory)


class Report(Audited, Base):
    """A report from anyone, without an account. Contact details are for officers only."""

    __tablename__ = "report"
    __audit_exclude__ = frozenset({"secret_hash"})
    __table_args__ = (CheckConstraint(f"category IN {CATEGORIES!r}", name="category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt: Mapped[str] = mapped_column(String(20), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    admin_unit_code: Mapped[str | None] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(Text, default="")
    shop_name: Mapped[str] = mapped_column(String(300), default="")
    shop_address: Mapped[str] = mapped_column(Text, default="")
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("ip_asset.id"), index=True)
    product: Mapped[str] = mapped_column(String(300), default="")
    code: Mapped[str | None] = mapped_column(String(500))
    # Filled from the code (typed or found in a photo) by the code resolver traceability provides.
    linked_label_id: Mapped[int | None]
    linked_batch_id: Mapped[int | None]
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    contact_consent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("infringement_case.id"), index=True)

    case: Mapped[Case | None] = relationship(back_populates="reports")
    photos: Mapped[list[ReportPhoto]] = relationship(
        back_populates="report", order_by="ReportPhoto.id", cascade="all, delete-orphan"
    )

    # What the reporter's status page shows is the case's: one place, never out of step.
    @property
    def state(self) -> str:
        return self.case.state if self.case is not None else "received"

    @property
    def public_note(self) -> str:
        return self.case.public_note if self.case is not None else ""


class ReportPhoto(Base):
    __tablename__ = "report_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(20))
    width: Mapped[int]
    height: Mapped[int]
    codes: Mapped[list[Any]] = mapped_column(JSON, default=list)

    report: Mapped[Report] = relationship(back_populates="photos")


class CaseState(enum.StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    TRANSFERRED = "transferred"
    REJECTED = "rejected"
    INVESTIGATING = "investigating"
    EXPERT_ASSESSMENT = "expert_assessment"
    VIOLATION_RECORDED = "violation_recorded"
    NO_VIOLATION = "no_violation"
    REFERRED_TO_POLICE = "referred_to_police"
    SANCTION_DECIDED = "sanction_decided"
    ENFORCED = "enforced"
    CLOSED = "closed"


class Case(Audited, Base):
    """An infringement case: from the first report or alarm to the sanction or dismissal."""

    __tablename__ = "infringement_case"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    state: Mapped[str] = mapped_column(String(30), default=CaseState.RECEIVED, index=True)
    source: Mapped[str] = mapped_column(String(20), default="report")  # report | clone_alarm
    title: Mapped[str] = mapped_column(String(300))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("ip_asset.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(500))
    linked_label_id: Mapped[int | None]
    linked_batch_id: Mapped[int | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    inspection_decision_number: Mapped[str] = mapped_column(String(100), default="")
    inspection_decision_date: Mapped[dt.date | None] = mapped_column(Date)
    infringer: Mapped[str] = mapped_column(Text, default="")
    violation_record: Mapped[str] = mapped_column(Text, default="")
    goods: Mapped[str] = mapped_column(Text, default="")
    goods_value_vnd: Mapped[int | None] = mapped_column(BigInteger)
    sanction_decision_number: Mapped[str] = mapped_column(String(100), default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    fine_vnd: Mapped[int | None] = mapped_column(BigInteger)
    fine_band_id: Mapped[int | None] = mapped_column(ForeignKey("fine_band.id"))
    # What the band is proposed from: the act (the decree's article), when it was committed,
    # and whether an individual or an organisation committed it (Art. 2(1): twice the fine).
    violation_article: Mapped[str] = mapped_column(String(20), default="", server_default="")
    violation_date: Mapped[dt.date | None] = mapped_column(Date)
    infringer_kind: Mapped[str | None] = mapped_column(String(20))
    # The registered organisation concerned (the infringer or the holder whose right it is).
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    measures: Mapped[str] = mapped_column(Text, default="")
    payment: Mapped[str] = mapped_column(Text, default="")
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    public_note: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)  # e.g. the scans of an alarm
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    transitions: Mapped[list[CaseTransition]] = relationship(
        back_populates="case", order_by="CaseTransition.id", cascade="all, delete-orphan"
    )
    reports: Mapped[list[Report]] = relationship(back_populates="case", order_by="Report.id")
    organisation: Mapped[Organisation | None] = relationship()
    attachments: Mapped[list[CaseAttachment]] = relationship(
        back_populates="case", order_by="CaseAttachment.id", cascade="all, delete-orphan"
    )


class CaseAttachment(Base):
    """A file officers add to a case (minutes, decisions, photos); officers only."""

    __tablename__ = "case_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("infringement_case.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(300))

    case: Mapped[Case] = relationship(back_populates="attachments")


class CaseTransition(Base):
    """Who moved a case, when, from which state to which, and why."""

    __tablename__ = "case_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("infringement_case.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="transitions")


class FineBand(Audited, Base):
    """A fine band of the sanctions decree as it stood between two dates (Decree 99/2013/NĐ-CP
    and its amendments): a case is judged by the band in force on its date.

    Amounts are an individual's; an organisation pays twice as much, up to its ceiling
    (Art. 2(1)). The goods' value range has an exclusive lower bound ("từ trên") and an
    inclusive upper one; a band may instead apply when the value cannot be determined."""

    __tablename__ = "fine_band"
    __table_args__ = (CheckConstraint("origin IN ('extract', 'officer')", name="origin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decree: Mapped[str] = mapped_column(String(100))  # e.g. "99/2013/NĐ-CP"
    amended_by: Mapped[str] = mapped_column(String(200), default="")  # e.g. "126/2021/NĐ-CP"
    article: Mapped[str] = mapped_column(String(100))  # e.g. "Điều 11, khoản 1, điểm a"
    description: Mapped[str] = mapped_column(Text)
    min_vnd: Mapped[int] = mapped_column(BigInteger)
    max_vnd: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_to: Mapped[dt.date | None] = mapped_column(Date)
    clause: Mapped[str] = mapped_column(String(20), default="", server_default="")
    goods_value_above_vnd: Mapped[int | None] = mapped_column(BigInteger)
    goods_value_up_to_vnd: Mapped[int | None] = mapped_column(BigInteger)
    value_undeterminable: Mapped[bool] = mapped_column(default=False, server_default=false())
    warning_possible: Mapped[bool] = mapped_column(default=False, server_default=false())
    source: Mapped[str] = mapped_column(Text, default="", server_default="")  # provenance
    origin: Mapped[str] = mapped_column(String(10), default="officer", server_default="officer")

"""SQLAlchemy ORM rows. Names end in Row so they are never mistaken for domain objects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base
from .types import Money, RateNumber


class NetworkRow(Base):
    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class ProviderRow(Base):
    __tablename__ = "providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    tin: Mapped[str | None] = mapped_column(String(9))


class FeeScheduleRow(Base):
    __tablename__ = "fee_schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Bumped whenever the rates are replaced, so a cache keyed by (id, rates_version) is never stale.
    rates_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    rate_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FeeScheduleRateRow(Base):
    __tablename__ = "fee_schedule_rates"
    __table_args__ = (
        UniqueConstraint("fee_schedule_id", "procedure_code", "modifier"),
        CheckConstraint("(allowed_amount IS NULL) <> (percent_of_billed IS NULL)", name="one_price"),
        # A code's rate in every schedule of a network (the QPA), answered from the index on
        # PostgreSQL (migrations/versions/0002_rates_by_code.py).
        Index(
            "ix_fee_schedule_rates_by_code",
            "procedure_code",
            "fee_schedule_id",
            postgresql_include=["modifier", "allowed_amount", "percent_of_billed"],
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    fee_schedule_id: Mapped[int] = mapped_column(ForeignKey("fee_schedules.id", ondelete="CASCADE"))
    procedure_code: Mapped[str] = mapped_column(String(5))
    modifier: Mapped[str] = mapped_column(String(2), default="", server_default="")  # "" = none
    allowed_amount: Mapped[Decimal | None] = mapped_column(Money())
    percent_of_billed: Mapped[Decimal | None] = mapped_column(RateNumber())


class ContractRow(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("network_id", "provider_id", "effective_from"),
        Index("ix_contracts_provider_network", "provider_id", "network_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    fee_schedule_id: Mapped[int] = mapped_column(ForeignKey("fee_schedules.id"))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    timely_filing_days: Mapped[int | None] = mapped_column(Integer)
    unlisted_percent_of_billed: Mapped[Decimal | None] = mapped_column(RateNumber())

    network: Mapped[NetworkRow] = relationship(lazy="raise")
    provider: Mapped[ProviderRow] = relationship(lazy="raise")
    fee_schedule: Mapped[FeeScheduleRow] = relationship(lazy="raise")


class PlanRow(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    in_deductible: Mapped[Decimal] = mapped_column(Money())
    in_out_of_pocket_max: Mapped[Decimal] = mapped_column(Money())
    in_coinsurance_rate: Mapped[Decimal] = mapped_column(RateNumber())
    # All out-of-network columns are null when out-of-network care is not covered (HMO).
    oon_deductible: Mapped[Decimal | None] = mapped_column(Money())
    oon_out_of_pocket_max: Mapped[Decimal | None] = mapped_column(Money())
    oon_coinsurance_rate: Mapped[Decimal | None] = mapped_column(RateNumber())
    oon_allowed_method: Mapped[str | None] = mapped_column(String(32))
    oon_allowed_percent: Mapped[Decimal | None] = mapped_column(RateNumber())
    oon_fee_schedule_id: Mapped[int | None] = mapped_column(ForeignKey("fee_schedules.id"))
    prior_authorization_codes: Mapped[list[str]] = mapped_column(JSON, default=list)

    network: Mapped[NetworkRow] = relationship(lazy="raise")
    copay_categories: Mapped[list[CopayCategoryRow]] = relationship(
        lazy="raise", order_by="CopayCategoryRow.position", cascade="all, delete-orphan"
    )


class CopayCategoryRow(Base):
    __tablename__ = "copay_categories"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # first match wins, so order matters
    name: Mapped[str] = mapped_column(String(100))
    procedure_codes: Mapped[list[str]] = mapped_column(JSON)
    in_network_copay: Mapped[Decimal | None] = mapped_column(Money())
    out_of_network_copay: Mapped[Decimal | None] = mapped_column(Money())
    deductible_applies: Mapped[bool] = mapped_column(Boolean, default=True)
    coinsurance_rate: Mapped[Decimal | None] = mapped_column(RateNumber())


class MemberRow(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    coverage_from: Mapped[date] = mapped_column(Date)
    coverage_to: Mapped[date | None] = mapped_column(Date)

    plan: Mapped[PlanRow] = relationship(lazy="raise")


class AuthorizationRow(Base):
    __tablename__ = "authorizations"
    __table_args__ = (CheckConstraint("units_used >= 0 AND units_used <= units", name="units"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_number: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    procedure_codes: Mapped[list[str]] = mapped_column(JSON)
    units: Mapped[int] = mapped_column(Integer)
    units_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    status: Mapped[str] = mapped_column(String(16))

    member: Mapped[MemberRow] = relationship(lazy="raise")
    provider: Mapped[ProviderRow | None] = relationship(lazy="raise")


class AccumulatorRow(Base):
    __tablename__ = "accumulators"
    __table_args__ = (UniqueConstraint("member_id", "plan_year", "tier"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    plan_year: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(16))
    deductible_met: Mapped[Decimal] = mapped_column(Money())
    out_of_pocket_met: Mapped[Decimal] = mapped_column(Money())


class ClaimRow(Base):
    __tablename__ = "claims"
    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The submitted member id, kept even when no member has it (unknown member).
    member_ref: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    plan_code: Mapped[str | None] = mapped_column(String(64))
    billing_provider_npi: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(16))
    received_date: Mapped[date] = mapped_column(Date)
    # SHA-256 of the canonical parsed claim: the idempotency comparison.
    request_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # canonical claim, for re-adjudication
    eob: Mapped[str] = mapped_column(Text)  # the EOB JSON exactly as returned
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    adjudicated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list[ClaimLineRow]] = relationship(
        lazy="raise", order_by="ClaimLineRow.line_number", cascade="all, delete-orphan"
    )
    postings: Mapped[list[AccumulatorPostingRow]] = relationship(lazy="raise", cascade="all, delete-orphan")


class ClaimLineRow(Base):
    __tablename__ = "claim_lines"
    __table_args__ = (
        UniqueConstraint("claim_id", "line_number"),
        Index("ix_claim_lines_duplicate", "member_id", "procedure_code", "service_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    # A copy of the claim's member id, for ix_claim_lines_duplicate; no foreign key of its own
    # (the claim's is checked; migration 0004, docs/decisions.md).
    member_id: Mapped[int | None] = mapped_column(Integer)
    line_number: Mapped[int] = mapped_column(Integer)
    procedure_code: Mapped[str] = mapped_column(String(5))
    modifiers: Mapped[str] = mapped_column(String(11))  # sorted, comma-joined: the duplicate key
    units: Mapped[int] = mapped_column(Integer)
    service_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    network_status: Mapped[str | None] = mapped_column(String(16))
    accumulator_tier: Mapped[str | None] = mapped_column(String(16))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    billed_amount: Mapped[Decimal] = mapped_column(Money())
    allowed_amount: Mapped[Decimal] = mapped_column(Money())
    deductible_amount: Mapped[Decimal] = mapped_column(Money())
    copay_amount: Mapped[Decimal] = mapped_column(Money())
    coinsurance_amount: Mapped[Decimal] = mapped_column(Money())
    plan_paid_amount: Mapped[Decimal] = mapped_column(Money())
    patient_responsibility_amount: Mapped[Decimal] = mapped_column(Money())
    balance_billing_amount: Mapped[Decimal] = mapped_column(Money())
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    authorization_units: Mapped[int] = mapped_column(Integer, default=0)


class AccumulatorPostingRow(Base):
    """What one claim added to one accumulator bucket; voiding reverses exactly this."""

    __tablename__ = "accumulator_postings"
    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(Integer)  # the claim's member: see ClaimLineRow.member_id
    plan_year: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(16))
    deductible: Mapped[Decimal] = mapped_column(Money())
    out_of_pocket: Mapped[Decimal] = mapped_column(Money())

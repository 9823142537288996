"""Frozen dataclasses the adjudication core works on. Loaded by the shell, never by the core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from .codes import CodeSet
from .records import record


class Tier(StrEnum):
    IN_NETWORK = "in_network"
    OUT_OF_NETWORK = "out_of_network"


@record
class Rate:
    """One fee-schedule entry: a fixed amount per unit, or a percentage of billed (TiC `percentage`)."""

    allowed_amount: Decimal | None = None
    percent_of_billed: Decimal | None = None


# Rates are keyed by (procedure_code, modifier); modifier "" means the code's plain rate.
RateKey = tuple[str, str]


@record
class FeeSchedule:
    """A fee schedule, holding at least the rates for the codes of the claim being adjudicated."""

    code: str
    rates: Mapping[RateKey, Rate] = field(default_factory=dict)


@record
class Contract:
    id: int
    provider_npi: str
    effective_from: date
    effective_to: date | None
    fee_schedule: FeeSchedule
    timely_filing_days: int | None = None
    unlisted_percent_of_billed: Decimal | None = None

    def in_effect(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@record
class NetworkRates:
    """The contracts of the plan's network that share one fee schedule and one effective period,
    as one entry: the QPA median counts each contract's rate once, so an entry weighs `contracts`.
    (A network of 900 contracts on 200 schedules is 200 entries, not 900 objects per claim.)"""

    fee_schedule: FeeSchedule
    effective_from: date
    effective_to: date | None
    contracts: int = 1

    @classmethod
    def of(cls, contract: Contract) -> NetworkRates:
        return cls(contract.fee_schedule, contract.effective_from, contract.effective_to)

    def in_effect(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@record
class TierBenefit:
    deductible: Decimal
    out_of_pocket_max: Decimal
    coinsurance_rate: Decimal


class AllowedBasisMethod(StrEnum):
    PERCENT_OF_BILLED = "percent_of_billed"
    PERCENT_OF_FEE_SCHEDULE = "percent_of_fee_schedule"


@record
class AllowedBasis:
    method: AllowedBasisMethod
    percent: Decimal
    # The reference schedule (e.g. 150% of Medicare); set only for percent_of_fee_schedule.
    fee_schedule: FeeSchedule | None = None


@record
class OutOfNetworkBenefit:
    deductible: Decimal
    out_of_pocket_max: Decimal
    coinsurance_rate: Decimal
    allowed_basis: AllowedBasis


@record
class CopayCategory:
    name: str
    procedure_codes: CodeSet
    in_network_copay: Decimal | None
    out_of_network_copay: Decimal | None
    deductible_applies: bool = True
    coinsurance_rate: Decimal | None = None

    def copay_for(self, tier: Tier) -> Decimal | None:
        return self.in_network_copay if tier is Tier.IN_NETWORK else self.out_of_network_copay


@record
class Plan:
    code: str
    network_code: str
    in_network: TierBenefit
    out_of_network: OutOfNetworkBenefit | None
    copay_categories: tuple[CopayCategory, ...] = ()
    prior_authorization_codes: CodeSet = CodeSet()


@record
class Member:
    member_id: str
    plan: Plan
    coverage_from: date
    coverage_to: date | None


class AuthorizationStatus(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


@record
class Authorization:
    id: int
    authorization_number: str
    procedure_codes: CodeSet
    units: int
    units_used: int
    valid_from: date
    valid_to: date
    provider_npi: str | None
    status: AuthorizationStatus

    @property
    def units_left(self) -> int:
        return self.units - self.units_used


@record
class AccumulatorBalance:
    deductible_met: Decimal
    out_of_pocket_met: Decimal


# Accumulators per (plan_year, tier). A missing key means nothing met yet.
Accumulators = Mapping[tuple[int, Tier], AccumulatorBalance]


@record
class ClaimLine:
    line_number: int
    procedure_code: str
    modifiers: tuple[str, ...]
    units: int
    billed_amount: Decimal
    service_date: date
    authorization_number: str | None = None


@record
class Claim:
    claim_id: str
    member_id: str
    billing_provider_npi: str
    facility_npi: str | None
    place_of_service: str
    emergency: bool
    received_date: date
    diagnosis_codes: tuple[str, ...]
    lines: tuple[ClaimLine, ...]


@record
class DuplicateKey:
    """What makes two lines the same service (adjudication.md step 2)."""

    billing_provider_npi: str
    procedure_code: str
    modifiers: tuple[str, ...]  # sorted: modifiers match in any order
    service_date: date

    @classmethod
    def of(cls, billing_provider_npi: str, line: ClaimLine) -> DuplicateKey:
        return cls(
            billing_provider_npi,
            line.procedure_code,
            tuple(sorted(line.modifiers)),
            line.service_date,
        )


@record
class AdjudicationContext:
    """Everything the core needs for one claim, loaded by the shell beforehand.

    `member` is None for an unknown member. Contract tuples hold only contracts in the member's
    plan network, for every date range; the core picks the one in effect per service date.
    Fee schedules hold at least the rates for the claim's procedure codes.
    """

    member: Member | None
    billing_provider_contracts: tuple[Contract, ...] = ()
    facility_contracts: tuple[Contract, ...] = ()
    # Every contract of the plan's network, grouped by schedule and period (for the QPA median).
    # Loaded only when a line can be protected (emergency claim or a facility NPI); else empty.
    network_rates: tuple[NetworkRates, ...] = ()
    # The member's approved authorizations, with units used so far. Denied ones may be included
    # too: a line whose only matching authorization was denied then gets CARC 39 instead of 197.
    authorizations: tuple[Authorization, ...] = ()
    accumulators: Accumulators = field(default_factory=dict)
    # Paid lines of the member's other non-voided claims.
    paid_lines: frozenset[DuplicateKey] = frozenset()

"""What the exporters read: a claim as stored (its EOB and request JSON) and the payer's identity.

The exporters never touch the database: the shell loads these, so the FHIR and X12 views are
pure functions of the stored EOB and always agree with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..domain.records import record

CARC_DESCRIPTIONS = {
    "1": "Deductible amount",
    "2": "Coinsurance amount",
    "3": "Co-payment amount",
    "18": "Exact duplicate claim/service",
    "26": "Expenses incurred prior to coverage",
    "27": "Expenses incurred after coverage terminated",
    "29": "The time limit for filing has expired",
    "31": "Patient cannot be identified as our insured",
    "39": "Services denied at the time authorization/pre-certification was requested",
    "45": "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement",
    "197": "Precertification/authorization/notification/pre-treatment absent",
    "198": "Precertification/notification/authorization/pre-treatment exceeded",
    "242": "Services not provided by network/primary care providers",
}

REMARK_DESCRIPTIONS = {
    "N448": "This drug/service/supply is not included in the fee schedule or contracted/legislated "
    "fee arrangement",
    "N830": "Processed under the No Surprises Act: cost sharing at the in-network level",
    "N864": "Emergency services: the No Surprises Act protects you from balance billing",
    "N865": "Non-participating provider at a participating facility: the No Surprises Act protects "
    "you from balance billing",
}


@record
class Payer:
    name: str
    payer_id: str  # the payer's identification number (REF*2U, FHIR insurer identifier)
    tin: str  # nine-digit federal tax id; the 835 trace (TRN03) is "1" followed by it
    address_line: str
    city: str
    state: str
    postal_code: str
    contact_phone: str
    fhir_base: str  # base URL of the payer's identifier systems and extensions


@record
class StoredClaim:
    eob: Mapping[str, Any]  # the EOB JSON exactly as returned by the claims API
    request: Mapping[str, Any]  # the canonical claim as submitted
    payer_claim_number: str  # the payer's own control number for the claim
    received_date: date
    created_at: datetime
    adjudicated_at: datetime | None
    voided_at: datetime | None

    @property
    def status(self) -> str:
        return str(self.eob["status"])

    @property
    def was_adjudicated(self) -> bool:
        """True when lines were priced or denied (a claim voided while pended never was)."""
        return any(line["status"] != "pended" for line in self.eob["lines"])

    @property
    def adjudicated_status(self) -> str:
        """The status the claim had when adjudicated; a voided EOB keeps its lines but not this."""
        if self.status != "voided":
            return self.status
        statuses = {line["status"] for line in self.eob["lines"]}
        if statuses == {"paid"}:
            return "paid"
        return "partially_paid" if "paid" in statuses else "denied"


def money(text: str) -> Decimal:
    """An EOB money string ("85.00") as an exact Decimal."""
    return Decimal(text)

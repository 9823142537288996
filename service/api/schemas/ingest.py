"""Response bodies of the bulk fee-schedule ingest endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RateCountOut(BaseModel):
    code: str
    rate_count: int


class TicImportOut(BaseModel):
    """What a Transparency-in-Coverage import stored, skipped and warned about."""

    network_code: str
    providers_created: int
    providers_updated: int
    providers_unchanged: int
    fee_schedules: int = Field(description="Fee schedules (one per provider group) whose rates were replaced")
    contracts_created: int
    contracts_updated: int
    contracts_ended: int = Field(description="Earlier contracts ended the day before the new ones start")
    rates: int = Field(description="Fee-schedule rate rows written")
    skipped: dict[str, int] = Field(description="Negotiated prices (or references) not imported, by reason")
    warnings: list[str] = Field(description="The first warnings; warning_count has them all")
    warning_count: int

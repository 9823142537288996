"""Configuration from CLAIMS_* environment variables. The only reader of os.environ."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./claims.db",
        description="SQLAlchemy URL. postgresql+psycopg://... in production.",
    )
    # {"<key>": ["admin", "claims:write", "claims:read"]}; empty means auth is off (loopback only).
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_statement_timeout_ms: int = 10_000
    # Claims submitted concurrently to one worker share a transaction, up to this many (group
    # commit, service/services/batching.py); 1 gives every claim a transaction of its own.
    submit_batch_max: int = Field(default=32, ge=1, le=1_000)
    # FastAPI's own OpenTelemetry (spans, metrics, log records through the globally configured
    # providers). Off by default: it asks for the global providers on every request (2% of a
    # worker's time on the claims path), and the service has its Prometheus metrics and JSON logs.
    opentelemetry: bool = False
    max_body_bytes: int = 1_048_576  # JSON bodies; rate uploads stream and have their own limit
    max_upload_bytes: int = 2_147_483_648

    # The payer's identity in the FHIR and X12 835 exports (docs/exports.md).
    payer_name: str = Field(default="Example Health Plan", min_length=1, max_length=60)
    payer_id: str = Field(default="EXHP1", pattern=r"^[A-Za-z0-9]{2,15}$")
    payer_tin: str = Field(default="999999999", pattern=r"^[0-9]{9}$")
    payer_address_line: str = Field(default="100 Main Street", min_length=1, max_length=55)
    payer_city: str = Field(default="Springfield", min_length=2, max_length=30)
    payer_state: str = Field(default="IL", pattern=r"^[A-Z]{2}$")
    payer_postal_code: str = Field(default="62701", pattern=r"^[0-9]{5}([0-9]{4})?$")
    payer_contact_phone: str = Field(default="8005550100", pattern=r"^[0-9]{10}$")
    fhir_identifier_base: str = "https://claims.example/fhir"
    x12_usage_indicator: Literal["P", "T"] = "T"  # ISA15: "P" once trading partners are live
    # Set by the CLI for more than one worker: prometheus_client's multiprocess directory.
    prometheus_multiproc_dir: str | None = Field(
        default=None,
        validation_alias=AliasChoices("prometheus_multiproc_dir", "PROMETHEUS_MULTIPROC_DIR"),
    )

    @field_validator("api_keys")
    @classmethod
    def _known_scopes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        allowed = {"admin", "claims:write", "claims:read"}
        for key, scopes in v.items():
            if not key:
                raise ValueError("an API key may not be empty")
            unknown = set(scopes) - allowed
            if unknown:
                raise ValueError(f"unknown scopes {sorted(unknown)}; allowed: {sorted(allowed)}")
        return v


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Configuration from CLAIMS_* environment variables. The only reader of os.environ."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
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
    request_timeout_seconds: float = 30.0
    max_body_bytes: int = 1_048_576  # JSON bodies; rate uploads stream and have their own limit
    max_upload_bytes: int = 2_147_483_648

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

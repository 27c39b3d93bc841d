"""Settings from the environment or `.env`, validated once at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting the service reads. Names follow the original project."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    app_env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    # auto: JSON lines, or coloured console lines when stderr is a terminal (a person watching)
    log_format: Literal["auto", "json", "console"] = "auto"

    database_url: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "smarthealth"
    db_user: str = "postgres"
    db_password: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)

    data_dir: Path = Field(default=Path(".smarthealth"), alias="SMARTHEALTH_DATA_DIR")

    secret_key: str | None = None
    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    registration: Literal["open", "approval", "closed"] | None = Field(
        default=None, alias="SMARTHEALTH_REGISTRATION"
    )

    llm_provider: Literal["extractive", "openai"] = "extractive"
    openai_api_key: str | None = None
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(default=500, ge=1, le=32_000)
    llm_timeout: float = Field(default=30.0, gt=0)
    # Send the patient's identifiers (name, document, birth date) and doctors' names to the LLM:
    # only for a provider under a data-processing agreement. Off: the minimum necessary.
    llm_send_identifiers: bool = False

    # FHIR import: identifier system URI → Colombian document type code (CC, CE, TI, PA, RC, MS,
    # AS, CD), as JSON: FHIR_IDENTIFIER_SYSTEMS='{"https://registro.hospital.co/cc": "CC"}'.
    fhir_identifier_systems: dict[str, str] = Field(default_factory=dict)

    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ws_idle_timeout: float = Field(default=300.0, gt=0)
    ws_questions_per_minute: int = Field(default=20, ge=1)
    # `GET /metrics` answers only with this bearer token; unset, the route is 404.
    metrics_token: SecretStr | None = Field(
        default=None, alias="SMARTHEALTH_METRICS_TOKEN", min_length=16
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def registration_policy(self) -> str:
        """`open` in development, `approval` elsewhere, unless set explicitly."""
        if self.registration is not None:
            return self.registration
        return "open" if self.app_env == "development" else "approval"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir.expanduser().resolve() / "pgdata"

    @property
    def uses_embedded_database(self) -> bool:
        return not (self.database_url or self.db_host)

    def external_database_url(self) -> str | None:
        """The configured server's URL in SQLAlchemy asyncpg form, or None for the embedded one."""
        if self.database_url:
            return to_asyncpg_url(self.database_url)
        if self.db_host:
            auth = quote(self.db_user, safe="")
            if self.db_password:
                auth += ":" + quote(self.db_password, safe="")
            return (
                f"postgresql+asyncpg://{auth}@{self.db_host}:{self.db_port}/"
                f"{quote(self.db_name, safe='')}"
            )
        return None


def to_asyncpg_url(url: str) -> str:
    """Accept the usual spellings (postgres://, postgresql://, +psycopg) and use asyncpg."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL debe tener la forma postgresql://usuario@host/base")
    if scheme.split("+")[0] not in {"postgres", "postgresql"}:
        raise ValueError("DATABASE_URL debe apuntar a un servidor PostgreSQL")
    return f"postgresql+asyncpg://{rest}"


def to_libpq_url(url: str) -> str:
    """The same URL as `psql` understands it."""
    _, _, rest = url.partition("://")
    return f"postgresql://{rest}"


@lru_cache
def get_settings() -> Settings:
    return Settings()

